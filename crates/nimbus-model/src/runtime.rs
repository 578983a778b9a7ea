//! The runtime identifiers Nimbus runs, and how each one is started.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    ProvidedAl2023,
    ProvidedAl2,
    Nodejs20,
    Nodejs22,
    Nodejs24,
    Python311,
    Python312,
    Python313,
}

/// What starts the runtime process: the function's own `bootstrap`, or one Nimbus ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFamily {
    Provided,
    Node,
    Python,
}

/// Runtime ids AWS knows that Nimbus does not run; they get a clear "not supported" error.
const KNOWN_ELSEWHERE: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.14",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "provided",
];

impl Runtime {
    pub const ALL: [Runtime; 8] = [
        Runtime::ProvidedAl2023,
        Runtime::ProvidedAl2,
        Runtime::Nodejs20,
        Runtime::Nodejs22,
        Runtime::Nodejs24,
        Runtime::Python311,
        Runtime::Python312,
        Runtime::Python313,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Runtime::ProvidedAl2023 => "provided.al2023",
            Runtime::ProvidedAl2 => "provided.al2",
            Runtime::Nodejs20 => "nodejs20.x",
            Runtime::Nodejs22 => "nodejs22.x",
            Runtime::Nodejs24 => "nodejs24.x",
            Runtime::Python311 => "python3.11",
            Runtime::Python312 => "python3.12",
            Runtime::Python313 => "python3.13",
        }
    }

    pub fn family(self) -> RuntimeFamily {
        match self {
            Runtime::ProvidedAl2023 | Runtime::ProvidedAl2 => RuntimeFamily::Provided,
            Runtime::Nodejs20 | Runtime::Nodejs22 | Runtime::Nodejs24 => RuntimeFamily::Node,
            Runtime::Python311 | Runtime::Python312 | Runtime::Python313 => RuntimeFamily::Python,
        }
    }

    /// The interpreter's major(.minor) version this runtime must run on, e.g. "20" or "3.12".
    pub fn language_version(self) -> Option<&'static str> {
        match self {
            Runtime::ProvidedAl2023 | Runtime::ProvidedAl2 => None,
            Runtime::Nodejs20 => Some("20"),
            Runtime::Nodejs22 => Some("22"),
            Runtime::Nodejs24 => Some("24"),
            Runtime::Python311 => Some("3.11"),
            Runtime::Python312 => Some("3.12"),
            Runtime::Python313 => Some("3.13"),
        }
    }

    /// Whether `s` is a runtime id AWS accepts at all (used to pick the error kind).
    pub fn is_known_elsewhere(s: &str) -> bool {
        KNOWN_ELSEWHERE.contains(&s)
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Runtime {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Runtime::ALL.into_iter().find(|r| r.id() == s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for r in Runtime::ALL {
            assert_eq!(r.id().parse::<Runtime>(), Ok(r));
        }
        "java21".parse::<Runtime>().unwrap_err();
        assert!(Runtime::is_known_elsewhere("java21"));
    }
}

//! A function's `LoggingConfig`: the log format (Text or JSON), the application and system
//! log levels that JSON logs are filtered by, and the log group its logs go to; plus how
//! Lambda reads the level of a line a function printed.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `LogFormat`: AWS's plain text lines, or JSON records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogFormat {
    #[default]
    Text,
    #[serde(rename = "JSON")]
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "Text",
            LogFormat::Json => "JSON",
        }
    }
}

/// A log level, least severe first (`ApplicationLogLevel` takes them all, `SystemLogLevel`
/// DEBUG, INFO and WARN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    pub const ALL: [LogLevel; 6] = [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error, LogLevel::Fatal];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        }
    }

    /// A level as runtimes and logging libraries spell it, in any case (`warning`,
    /// `critical` and `err` included); None for anything else.
    pub fn parse_loose(s: &str) -> Option<LogLevel> {
        let known = [
            ("TRACE", LogLevel::Trace),
            ("DEBUG", LogLevel::Debug),
            ("INFO", LogLevel::Info),
            ("WARN", LogLevel::Warn),
            ("WARNING", LogLevel::Warn),
            ("ERROR", LogLevel::Error),
            ("ERR", LogLevel::Error),
            ("FATAL", LogLevel::Fatal),
            ("CRITICAL", LogLevel::Fatal),
        ];
        known.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)).map(|(_, l)| *l)
    }
}

/// A function's logging configuration as stored. The levels are set only with the JSON
/// format (AWS defaults both to INFO there and drops them when the format goes back to
/// Text); `log_group` None is the function's own `/aws/lambda/<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfig {
    #[serde(default)]
    pub format: LogFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_level: Option<LogLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_level: Option<LogLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

/// A `LoggingConfig` as a request gives it: every field optional, checked by [`LoggingConfig::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggingChange {
    pub format: Option<String>,
    pub application_level: Option<String>,
    pub system_level: Option<String>,
    pub log_group: Option<String>,
}

const SYSTEM_LEVELS: [LogLevel; 3] = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn];

impl LoggingConfig {
    pub fn is_default(&self) -> bool {
        *self == LoggingConfig::default()
    }

    /// The application log level lines are filtered by: only with the JSON format.
    pub fn application_filter(&self) -> Option<LogLevel> {
        match self.format {
            LogFormat::Json => Some(self.application_level.unwrap_or(LogLevel::Info)),
            LogFormat::Text => None,
        }
    }

    /// The system log level Lambda's own JSON records are filtered by: only with JSON.
    pub fn system_filter(&self) -> Option<LogLevel> {
        match self.format {
            LogFormat::Json => Some(self.system_level.unwrap_or(LogLevel::Info)),
            LogFormat::Text => None,
        }
    }

    /// This configuration changed as CreateFunction or UpdateFunctionConfiguration asks, with
    /// AWS's checks: the enums and the log group's pattern (ValidationException), and levels
    /// only with the JSON format (InvalidParameterValueException). Fields not given are
    /// kept, except that levels go when the format becomes Text and default to INFO when
    /// it becomes JSON.
    pub fn apply(&self, change: LoggingChange) -> Result<LoggingConfig, ApiError> {
        let format = match change.format.as_deref() {
            None => None,
            Some("JSON") => Some(LogFormat::Json),
            Some("Text") => Some(LogFormat::Text),
            Some(other) => {
                return Err(ApiError::validation(other, "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]"))
            }
        };
        let level = |value: Option<String>, field: &str, allowed: &[LogLevel]| -> Result<Option<LogLevel>, ApiError> {
            let Some(value) = value else { return Ok(None) };
            match allowed.iter().find(|l| l.as_str() == value) {
                Some(l) => Ok(Some(*l)),
                None => {
                    let names: Vec<&str> = allowed.iter().map(|l| l.as_str()).collect();
                    Err(ApiError::validation(&value, field, &format!("Member must satisfy enum value set: [{}]", names.join(", "))))
                }
            }
        };
        let application_level = level(change.application_level, "loggingConfig.applicationLogLevel", &LogLevel::ALL)?;
        let system_level = level(change.system_level, "loggingConfig.systemLogLevel", &SYSTEM_LEVELS)?;
        if let Some(group) = &change.log_group {
            check_log_group(group)?;
        }
        let mut next = self.clone();
        if let Some(format) = format {
            if format != next.format {
                next.application_level = None;
                next.system_level = None;
            }
            next.format = format;
        }
        if (application_level.is_some() || system_level.is_some()) && next.format == LogFormat::Text {
            return Err(ApiError::new(
                crate::ErrorCode::InvalidParameterValue,
                "LogLevel is not supported when LogFormat is set to \"Text\". Remove LogLevel from your request or change the LogFormat to \"Json\" and try again.",
            ));
        }
        if next.format == LogFormat::Json {
            next.application_level = Some(application_level.or(next.application_level).unwrap_or(LogLevel::Info));
            next.system_level = Some(system_level.or(next.system_level).unwrap_or(LogLevel::Info));
        }
        if let Some(group) = change.log_group {
            next.log_group = Some(group);
        }
        Ok(next)
    }
}

fn check_log_group(group: &str) -> Result<(), ApiError> {
    let constraint = if group.is_empty() {
        Some("Member must have length greater than or equal to 1")
    } else if group.len() > 512 {
        Some("Member must have length less than or equal to 512")
    } else if !group.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b)) {
        Some("Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
    } else {
        None
    };
    match constraint {
        Some(c) => Err(ApiError::validation(group, "loggingConfig.logGroup", c)),
        None => Ok(()),
    }
}

/// The level Lambda gives a line a function printed when its logs are JSON: a JSON object's
/// `level` (or, as AWS's Python runtime writes its own error records, `log_level`) when it
/// names one, else INFO.
pub fn line_level(line: &str) -> LogLevel {
    #[derive(Deserialize)]
    struct Levelled<'a> {
        #[serde(borrow, default)]
        level: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        log_level: Option<std::borrow::Cow<'a, str>>,
    }
    if !line.trim_start().starts_with('{') {
        return LogLevel::Info;
    }
    match serde_json::from_str::<Levelled<'_>>(line) {
        Ok(l) => l.level.or(l.log_level).and_then(|s| LogLevel::parse_loose(&s)).unwrap_or(LogLevel::Info),
        Err(_) => LogLevel::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn change(format: Option<&str>, app: Option<&str>, sys: Option<&str>, group: Option<&str>) -> LoggingChange {
        LoggingChange {
            format: format.map(Into::into),
            application_level: app.map(Into::into),
            system_level: sys.map(Into::into),
            log_group: group.map(Into::into),
        }
    }

    fn json(app: LogLevel, sys: LogLevel, group: Option<&str>) -> LoggingConfig {
        LoggingConfig { format: LogFormat::Json, application_level: Some(app), system_level: Some(sys), log_group: group.map(Into::into) }
    }

    #[test]
    fn changes_as_aws_applies_them() {
        use LogLevel::*;
        let text = LoggingConfig::default();
        let cases: Vec<(LoggingConfig, LoggingChange, LoggingConfig)> = vec![
            // AWS's recorded answers (LocalStack's TestLoggingConfig snapshots).
            (text.clone(), change(Some("JSON"), None, None, None), json(Info, Info, None)),
            (text.clone(), change(Some("JSON"), Some("DEBUG"), None, None), json(Debug, Info, None)),
            (text.clone(), change(Some("JSON"), None, Some("DEBUG"), None), json(Info, Debug, None)),
            (
                text.clone(),
                change(None, None, None, Some("cool_lambda")),
                LoggingConfig { log_group: Some("cool_lambda".into()), ..Default::default() },
            ),
            (json(Info, Info, None), change(Some("Text"), None, None, None), text.clone()),
            (
                json(Info, Info, None),
                change(Some("JSON"), Some("INFO"), Some("INFO"), Some("cool_lambda")),
                json(Info, Info, Some("cool_lambda")),
            ),
            // Levels kept while the format stays JSON; one changed alone.
            (json(Error, Warn, None), change(None, Some("TRACE"), None, None), json(Trace, Warn, None)),
            (json(Error, Warn, None), change(Some("JSON"), None, None, None), json(Error, Warn, None)),
            (json(Error, Warn, Some("g")), change(None, None, None, None), json(Error, Warn, Some("g"))),
        ];
        for (from, c, want) in cases {
            assert_eq!(from.apply(c.clone()).unwrap(), want, "{from:?} + {c:?}");
        }
    }

    #[test]
    fn bad_changes_get_aws_errors() {
        let text = LoggingConfig::default();
        let cases = [
            (change(Some("json"), None, None, None), ErrorCode::Validation, "'json' at 'loggingConfig.logFormat'"),
            (change(Some("JSON"), Some("VERBOSE"), None, None), ErrorCode::Validation, "[TRACE, DEBUG, INFO, WARN, ERROR, FATAL]"),
            (change(Some("JSON"), None, Some("ERROR"), None), ErrorCode::Validation, "[DEBUG, INFO, WARN]"),
            (change(None, Some("DEBUG"), None, None), ErrorCode::InvalidParameterValue, "LogLevel is not supported"),
            (change(Some("Text"), None, Some("WARN"), None), ErrorCode::InvalidParameterValue, "LogFormat is set to \"Text\""),
            (change(None, None, None, Some("bad group")), ErrorCode::Validation, "regular expression pattern"),
            (change(None, None, None, Some("")), ErrorCode::Validation, "greater than or equal to 1"),
        ];
        for (c, code, part) in cases {
            let err = text.apply(c.clone()).unwrap_err();
            assert_eq!(err.code, code, "{c:?}");
            assert!(err.message.contains(part), "{c:?}: {}", err.message);
        }
    }

    #[test]
    fn levels_of_printed_lines() {
        use LogLevel::*;
        let cases = [
            ("plain text", Info),
            (r#"{"level": "debug", "msg": "my debug log"}"#, Debug),
            (r#"{"timestamp":"t","level":"ERROR","requestId":"r","message":"m"}"#, Error),
            (r#"{"level":"warning"}"#, Warn),
            (r#"{"level":"CRITICAL"}"#, Fatal),
            (r#"{"log_level":"ERROR","errorType":"E"}"#, Error),
            (r#"{"level":"loud"}"#, Info),
            (r#"{"level":5}"#, Info),
            (r#"{"no":"level"}"#, Info),
            (r#"{"broken"#, Info),
            (r#"  {"level":"TRACE","message":"esc\"aped"}"#, Trace),
        ];
        for (line, want) in cases {
            assert_eq!(line_level(line), want, "{line}");
        }
    }
}

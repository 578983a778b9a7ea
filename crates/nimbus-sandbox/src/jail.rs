//! Placeholder: the isolation of one execution environment (namespaces, mounts, user,
//! seccomp), run by `nimbus sandbox-init` between the server and the runtime process.

/// Entry point of `nimbus sandbox-init`; returns an exit code only on failure.
pub fn init_main() -> i32 {
    eprintln!("sandbox-init: not implemented");
    127
}

//! Named crash points for fault tests: `LYCEUM_FAILPOINT=<name>` makes the process abort
//! when it reaches that point, the way a power cut or SIGKILL would. Unset in production,
//! where each check is one relaxed load of a cached value.

use std::sync::OnceLock;

fn configured() -> Option<&'static str> {
    static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();
    FAILPOINT
        .get_or_init(|| {
            std::env::var("LYCEUM_FAILPOINT")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .as_deref()
}

/// Aborts the process if the failpoint `name` is armed.
pub fn hit(name: &str) {
    if configured() == Some(name) {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}

//! Named crash points for the crash-safety suite (cargo feature `failpoints`).
//!
//! Every durable step and every journal write is bracketed by [`hit`] calls with a stable name
//! (the list is in docs/crash-safety.md). Without the feature, [`hit`] compiles to nothing.
//!
//! With the feature, two environment variables drive it:
//! - `KHARDEN_CRASH_AT=N`: the N-th point hit (1-based) kills the process with SIGKILL, as an
//!   operator's `kill -9` or the OOM killer would: no destructors run, nothing unwinds, no
//!   buffered output is flushed. `KHARDEN_CRASH_AT=name` kills at the first hit of that name,
//!   `name#K` at its K-th hit.
//! - `KHARDEN_FAILPOINT_TRACE=1`: print `failpoint: N name` on stderr for every point hit, so a
//!   test can enumerate them.

/// Mark a crash point.
#[inline]
pub fn hit(name: &'static str) {
    #[cfg(feature = "failpoints")]
    imp::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(feature = "failpoints")]
// The crash suite reads the trace and the kill notice on stderr (a test build feature).
#[allow(clippy::print_stderr)]
mod imp {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    static COUNT: AtomicUsize = AtomicUsize::new(0);
    static PER_NAME: Mutex<Option<HashMap<&'static str, usize>>> = Mutex::new(None);

    pub fn hit(name: &'static str) {
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        let k = {
            let mut guard = match PER_NAME.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let map = guard.get_or_insert_with(HashMap::new);
            let e = map.entry(name).or_insert(0);
            *e += 1;
            *e
        };
        if std::env::var_os("KHARDEN_FAILPOINT_TRACE").is_some() {
            eprintln!("failpoint: {n} {name}");
        }
        let Ok(spec) = std::env::var("KHARDEN_CRASH_AT") else {
            return;
        };
        let die = match spec.parse::<usize>() {
            Ok(at) => at == n,
            Err(_) => match spec.split_once('#') {
                Some((s, kk)) => s == name && kk.parse::<usize>().ok() == Some(k),
                None => spec == name && k == 1,
            },
        };
        if die {
            eprintln!("failpoint: killed at {n} {name}");
            // SIGKILL cannot be caught: this is exactly `kill -9`.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            // raise(SIGKILL) does not return; abort is a belt for the impossible case.
            std::process::abort();
        }
    }
}

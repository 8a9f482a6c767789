//! SIGINT and SIGTERM during a run that writes outputs (`score`, `embed`, `embed-text`):
//! the run finishes the batch in hand, commits it, prints its summary line and exits
//! with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), its outputs ready
//! for `--resume`. A second signal ends the process at once, with the same code (what
//! is committed stays committed, as after any kill).
//!
//! [`install`] sets the handlers (they only set a flag); the commands call [`check`]
//! between batches, and return its [`Interrupted`] error, which `main` turns into the
//! exit code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The signal that asked the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    pub signal: i32,
}

impl Interrupted {
    /// The exit code: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(u8::MAX)
    }

    fn name(self) -> String {
        match self.signal {
            2 => "SIGINT".into(),
            15 => "SIGTERM".into(),
            n => format!("signal {n}"),
        }
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by {} after committing the batch in hand",
            self.name()
        )
    }
}

impl std::error::Error for Interrupted {}

/// The signal received, 0 for none; set by the handlers.
static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the handlers of SIGINT and SIGTERM. Where they cannot be installed, the
/// signals keep their default action (the run is killed, and resumes like after any
/// kill).
pub fn install() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use std::sync::atomic::AtomicBool;
        let received = Arc::new(AtomicUsize::new(0));
        let any = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // The order matters: a signal that finds the flag already set exits at once.
            let installed = signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(&any),
            )
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&any)))
            .and_then(|_| {
                signal_hook::flag::register_usize(signal, Arc::clone(&received), signal as usize)
            });
            if let Err(e) = installed {
                eprintln!("vtde: warning: cannot handle signal {signal}: {e}");
            }
        }
        let _ = SIGNAL.set(received);
    }
}

/// The signal received since [`install`], if any.
pub fn requested() -> Option<Interrupted> {
    let signal = SIGNAL.get()?.load(Ordering::SeqCst);
    (signal != 0).then(|| Interrupted {
        signal: i32::try_from(signal).unwrap_or(i32::MAX),
    })
}

/// An [`Interrupted`] error when a signal asked the run to stop.
pub fn check() -> anyhow::Result<()> {
    match requested() {
        Some(i) => Err(i.into()),
        None => Ok(()),
    }
}

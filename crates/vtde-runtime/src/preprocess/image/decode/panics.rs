//! Decoder panics caught quietly: a panic inside a Rust image decoder becomes that file's
//! error, with no panic message or backtrace on stderr.
//!
//! Rust prints a panic through the process's panic hook before unwinding, even when the
//! panic is caught. Replacing the hook for good would silence the application's own
//! panics, so the runtime installs, once, a hook that wraps the one in place: it stays
//! silent only while the panicking thread is inside [`catch_quietly`] (a thread-local
//! flag), and hands every other panic to the previous hook. An application that sets its
//! own hook later replaces this one; decoder panics are then printed by its hook, and
//! still caught.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

thread_local! {
    /// Set while this thread runs code whose panics are caught and reported as errors.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();

fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic is returned as its message (one line), printed nowhere.
pub(crate) fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was_quiet = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was_quiet));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_gives_its_message_on_one_line() {
        let r: Result<(), String> = catch_quietly(|| panic!("bad\ntile {}", 3));
        assert_eq!(r.unwrap_err(), "bad tile 3");
        assert_eq!(catch_quietly(|| 5), Ok(5));
        // The flag is restored: nested and later calls see their own state.
        assert!(!QUIET.with(Cell::get));
        let nested = catch_quietly(|| {
            let inner: Result<(), String> = catch_quietly(|| panic!("inner"));
            (inner, QUIET.with(Cell::get))
        });
        assert_eq!(nested, Ok((Err("inner".into()), true)));
        assert!(!QUIET.with(Cell::get));
    }
}

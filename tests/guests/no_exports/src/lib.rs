//! Test guest: a valid component that exports nothing the host knows.

/// A plain core export; not a `workflow:plugin` interface.
#[unsafe(no_mangle)]
pub extern "C" fn answer() -> i32 {
    42
}

//! The test guests (`tests/guests/*`), built from source by this crate's
//! build script for `wasm32-wasip2` with the `guest` profile.
//!
//! A test that needs a guest names its path constant instead of expecting a
//! script to have run first: `cargo test` builds what the tests load. The
//! generated module holds:
//!
//! - one `pub const NAME: &str` per guest: the absolute path of its `.wasm`;
//! - [`NOT_WASM`]: a `.wasm` file that is not WebAssembly at all;
//! - [`DIR`]: the folder holding exactly these files (the tests load it
//!   whole, as `host --plugins` would);
//! - [`GUESTS`]: every guest's name and path;
//! - `foreach_guest!(m)`: calls `m!(name)` once per guest, so the test suite
//!   can fail to compile when a guest has no test (wasmtime's
//!   `assert_test_exists`).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

//! Link `lxrs` as a position-dependent executable.
//!
//! Every command is a fresh process, and the start path runs two (the command and the
//! monitor). As a PIE, the dynamic loader first applies ~24,000 relative relocations, which
//! write to (and so copy) every page of `.data.rel.ro` (~400 KiB of vtables and string
//! tables): ~110 extra page faults and ~0.6 ms per exec here (`perf stat lxrs --version`:
//! 1.96 ms PIE, 1.33 ms non-PIE). Linked non-PIE, those addresses are fixed at link time and
//! the pages stay shared with the page cache. The shared libraries, stack, heap and mmap
//! areas are still randomised. The crates keep being compiled as PIC, so this is only a
//! link flag.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}

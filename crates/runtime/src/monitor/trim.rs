//! Giving back the monitor's start-up pages.
//!
//! A monitor lives as long as its container and spends that time asleep in `poll`. Most of
//! what it has mapped by then is code and read-only data it needed once, to start the
//! container (the lxrs binary's text alone is several MiB, mapped 64 KiB at a time by the
//! kernel's fault-around). Once the container runs, the monitor drops its page-table entries
//! for every clean, read-only, file-backed mapping (`MADV_DONTNEED`): the pages stay in the
//! page cache, shared and reclaimable, and whatever the monitor touches again is faulted back
//! in from the same file. Private mappings holding anonymous (copied-on-write) pages, such as
//! the relocated RELRO segment, are left alone: for them `MADV_DONTNEED` would throw the
//! relocations away.

/// One mapping of `/proc/self/smaps` that may be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Droppable {
    pub start: usize,
    pub end: usize,
}

/// The mappings of an smaps text that are file-backed, not writable, private and hold no
/// anonymous page.
pub fn droppable(smaps: &str) -> Vec<Droppable> {
    droppable_where(smaps, |_| true)
}

/// [`droppable`], of the file `path` only.
pub fn droppable_of(smaps: &str, path: &str) -> Vec<Droppable> {
    droppable_where(smaps, |p| p == path)
}

fn droppable_where(smaps: &str, wanted: impl Fn(&str) -> bool) -> Vec<Droppable> {
    let mut out = Vec::new();
    // (mapping, candidate by its header, proven clean by an "Anonymous: 0 kB" line)
    let mut cur: Option<(Droppable, bool, bool)> = None;
    let flush = |cur: &mut Option<(Droppable, bool, bool)>, out: &mut Vec<Droppable>| {
        if let Some((d, true, true)) = cur.take() {
            out.push(d);
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                // A mapping header: "start-end perms offset dev inode [path]".
                flush(&mut cur, &mut out);
                let perms = f.next().unwrap_or("");
                let _offset = f.next();
                let _dev = f.next();
                let inode = f.next().and_then(|i| i.parse::<u64>().ok()).unwrap_or(0);
                let path = f.next().unwrap_or("");
                let ok = inode != 0
                    && path.starts_with('/')
                    && matches!(perms, "r-xp" | "r--p")
                    && wanted(path);
                cur = Some((Droppable { start, end }, ok, false));
                continue;
            }
        }
        if first == "Anonymous:" {
            let kb = f.next().and_then(|v| v.parse::<u64>().ok());
            if let Some((_, _, clean)) = cur.as_mut() {
                *clean = kb == Some(0);
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Drop this process's clean read-only file pages (see the module docs). Best effort: returns
/// how many bytes of mappings were advised.
pub fn release_startup_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    // SAFETY: the ranges were checked in smaps just above, and nothing maps or writes memory
    // in between (the monitor is single-threaded).
    unsafe { drop_page_tables(&droppable(&smaps)) }
}

/// `MADV_DONTNEED` over each range; how many bytes were advised.
///
/// # Safety
/// Every range must be one whole mapping of this process that is private, read-only,
/// file-backed and without anonymous pages ([`droppable`]).
unsafe fn drop_page_tables(ranges: &[Droppable]) -> usize {
    let mut bytes = 0;
    for d in ranges {
        let len = d.end - d.start;
        // SAFETY: per this function's contract, the range is a whole private, read-only,
        // file-backed mapping without anonymous pages. MADV_DONTNEED only removes its
        // page-table entries; the next access reads the same file pages back, so no content
        // changes.
        let r = unsafe { libc::madvise(d.start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if r == 0 {
            bytes += len;
        }
    }
    bytes
}

/// The droppable mappings of this process's own executable, found once. An executable's
/// segments stay mapped, unchanged, for the life of the process, so they can be dropped again
/// after every command without reading smaps anew: serving a command faults in code from all
/// over the binary, each fault mapping 64 KiB around it (a single `freeze` took the monitor
/// from 0.7 to 2.7 MiB), and dropping it again costs the next command about 26 page faults
/// (0.1-0.2 ms here).
#[derive(Debug, Default)]
pub struct OwnText(Vec<Droppable>);

impl OwnText {
    pub fn find() -> OwnText {
        let exe = match std::fs::read_link("/proc/self/exe") {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => return OwnText::default(),
        };
        // smaps names the file by its first word only when it was replaced meanwhile.
        let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
        match std::fs::read_to_string("/proc/self/smaps") {
            Ok(smaps) => OwnText(droppable_of(&smaps, exe)),
            Err(_) => OwnText::default(),
        }
    }

    /// Drop the page-table entries of these mappings; how many bytes were advised.
    pub fn release(&self) -> usize {
        // SAFETY: found droppable; an executable's segments are never unmapped, remapped or
        // written while it runs, so they still are.
        unsafe { drop_page_tables(&self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:00 326279                     /usr/local/bin/lxrs
Size:               1024 kB
Rss:                 816 kB
Anonymous:             0 kB
55d0a0100000-55d0a0500000 r-xp 00100000 fe:00 326279                     /usr/local/bin/lxrs
Size:               4096 kB
Anonymous:             0 kB
55d0a0500000-55d0a0550000 r--p 00500000 fe:00 326279                     /usr/local/bin/lxrs
Size:                320 kB
Anonymous:           320 kB
55d0a0550000-55d0a0552000 rw-p 00550000 fe:00 326279                     /usr/local/bin/lxrs
Anonymous:             8 kB
55d0a1000000-55d0a1100000 rw-p 00000000 00:00 0                          [heap]
Anonymous:           116 kB
7f0000000000-7f0000100000 r-xp 00028000 fe:00 12345                      /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000201000 r--s 00000000 fe:00 777                        /memfd:x (deleted)
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings() {
        let d = droppable(SMAPS);
        assert_eq!(
            d,
            vec![
                Droppable {
                    start: 0x55d0a0000000,
                    end: 0x55d0a0100000
                },
                Droppable {
                    start: 0x55d0a0100000,
                    end: 0x55d0a0500000
                },
                Droppable {
                    start: 0x7f0000000000,
                    end: 0x7f0000100000
                },
            ],
            "RELRO with anonymous pages, writable, shared and [vdso] mappings are kept"
        );
    }

    #[test]
    fn of_one_file_only() {
        // lxrs's two clean read-only mappings, not libc's
        assert_eq!(
            droppable_of(SMAPS, "/usr/local/bin/lxrs"),
            droppable(SMAPS)[..2]
        );
    }

    #[test]
    fn own_text_is_found_and_dropped_with_the_process_working() {
        let t = OwnText::find();
        assert!(
            t.release() > 0,
            "this test binary maps its own text read-only"
        );
        let v: Vec<String> = (0..100).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[42], "2a");
        assert!(t.release() > 0, "and again");
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_kept() {
        let s = "7f0000000000-7f0000100000 r-xp 00028000 fe:00 12345 /lib/x.so\nRss: 4 kB\n";
        // No "Anonymous:" line: nothing proves it clean, so it is kept.
        assert!(droppable(s).is_empty());
    }

    #[test]
    fn dropping_our_own_pages_keeps_the_process_working() {
        let before = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        assert!(before.contains("Rss:"));
        let n = release_startup_pages();
        assert!(n > 0, "this test binary maps its own text read-only");
        // Code, read-only data and relocated pointers are all still good.
        let v: Vec<String> = (0..100).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[42], "2a");
        assert!(std::panic::catch_unwind(|| 1 + 1).is_ok());
    }
}

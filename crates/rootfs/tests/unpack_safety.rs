//! Safe unpacking: crafted malicious tarballs are refused and nothing outside the destination
//! changes; a good archive keeps owners, modes, links, devices and xattrs. Runs as root.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

fn raw_header(path: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_old();
    // write the name bytes directly so '..' and '/' survive (set_path refuses them)
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    h
}

fn archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, k, data, link) in entries {
        let h = raw_header(p, *k, data.len() as u64, *link);
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn write_xz(dir: &Path, name: &str, tar: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    let mut e = xz2::write::XzEncoder::new(f, 1);
    e.write_all(tar).unwrap();
    e.finish().unwrap();
    p
}

fn snapshot(dir: &Path) -> Vec<(String, u64, u32)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        v.push((
            e.file_name().to_string_lossy().into_owned(),
            md.len(),
            md.mode(),
        ));
    }
    v.sort();
    v
}

use tar::EntryType as T;

/// (name, entries (path, type, data, link target), what the error must say)
type Case<'a> = (
    &'a str,
    Vec<(&'a str, T, &'a [u8], Option<&'a str>)>,
    &'a str,
);

#[test]
fn escapes_are_refused_and_nothing_outside_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "original").unwrap();
    let outside_s = outside.to_str().unwrap().to_string();
    let victim_s = format!("{outside_s}/victim");
    let cases: Vec<Case> = vec![
        (
            "dotdot",
            vec![("../outside/victim", T::Regular, b"pwned", None)],
            "'..'",
        ),
        (
            "deep-dotdot",
            vec![("a/../../outside/victim", T::Regular, b"pwned", None)],
            "'..'",
        ),
        (
            "absolute",
            vec![(victim_s.as_str(), T::Regular, b"pwned", None)],
            "absolute",
        ),
        (
            "abs-symlink",
            vec![
                ("esc", T::Symlink, b"", Some(outside_s.as_str())),
                ("esc/victim", T::Regular, b"pwned", None),
            ],
            "symlink",
        ),
        (
            "rel-symlink",
            vec![
                ("esc", T::Symlink, b"", Some("../outside")),
                ("esc/victim", T::Regular, b"pwned", None),
            ],
            "symlink",
        ),
        (
            "nested-symlink",
            vec![
                ("d", T::Directory, b"", None),
                ("d/up", T::Symlink, b"", Some("../..")),
                ("d/up/outside/new", T::Regular, b"pwned", None),
            ],
            "symlink",
        ),
        (
            "hardlink-out",
            vec![("h", T::Link, b"", Some("../outside/victim"))],
            "'..'",
        ),
        (
            "hardlink-via-symlink",
            vec![
                ("esc", T::Symlink, b"", Some(outside_s.as_str())),
                ("h", T::Link, b"", Some("esc/victim")),
            ],
            "outside",
        ),
    ];
    for (name, entries, why) in cases {
        let before = snapshot(&outside);
        let dest = tmp.path().join(format!("root-{name}"));
        std::fs::create_dir(&dest).unwrap();
        let ar = write_xz(tmp.path(), &format!("{name}.tar.xz"), &archive(&entries));
        let err = lxrs_rootfs::unpack(&ar, &dest).expect_err(name).to_string();
        assert!(
            err.contains("refused") && err.contains(why),
            "{name}: {err}"
        );
        assert!(
            err.contains(&format!("{name}.tar.xz")),
            "{name}: error names the archive: {err}"
        );
        assert_eq!(snapshot(&outside), before, "{name}: outside changed");
        assert_eq!(
            std::fs::read_to_string(outside.join("victim")).unwrap(),
            "original",
            "{name}"
        );
        // the victim must not have gained a link either
        assert_eq!(
            std::fs::metadata(outside.join("victim")).unwrap().nlink(),
            1,
            "{name}"
        );
    }
    // the symlink itself is fine (it is only data); writing an existing symlink's name replaces
    // the link, never what it points to
    let dest = tmp.path().join("root-replace");
    std::fs::create_dir(&dest).unwrap();
    let ar = write_xz(
        tmp.path(),
        "replace.tar.xz",
        &archive(&[
            ("esc", T::Symlink, b"", Some(victim_s.as_str())),
            ("esc", T::Regular, b"inside", None),
        ]),
    );
    lxrs_rootfs::unpack(&ar, &dest).unwrap();
    assert_eq!(std::fs::read_to_string(dest.join("esc")).unwrap(), "inside");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "original"
    );
}

#[test]
fn metadata_links_devices_and_xattrs_round_trip_through_pack() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root (owners, device nodes)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("etc/sub")).unwrap();
    std::fs::write(src.join("etc/a"), "hello").unwrap();
    std::os::unix::fs::chown(src.join("etc/a"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(src.join("etc/a"), std::fs::Permissions::from_mode(0o4751)).unwrap();
    std::fs::hard_link(src.join("etc/a"), src.join("etc/sub/b")).unwrap();
    std::os::unix::fs::symlink("/etc/a", src.join("abs")).unwrap();
    std::os::unix::fs::symlink("etc/sub", src.join("rel")).unwrap();
    nix::sys::stat::mknod(
        &src.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    std::fs::set_permissions(src.join("null"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let c = std::ffi::CString::new(src.join("etc/a").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated strings and value buffer.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"user.lxrs".as_ptr(),
            b"v1".as_ptr().cast(),
            2,
            0,
        )
    };
    assert_eq!(r, 0, "setxattr user.lxrs on {}", src.display());
    let have_xattr = true;

    let ar = tmp.path().join("rootfs.tar.xz");
    let f = std::fs::File::create(&ar).unwrap();
    lxrs_rootfs::pack_xz(&src, f, &ar).unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let st = lxrs_rootfs::unpack(&ar, &dest).unwrap();
    assert_eq!(st.entries, 7, "{st:?}"); // etc etc/a etc/sub etc/sub/b abs rel null ("./" itself is not counted)
    let a = std::fs::symlink_metadata(dest.join("etc/a")).unwrap();
    assert_eq!((a.uid(), a.gid(), a.mode() & 0o7777), (1234, 5678, 0o4751));
    let b = std::fs::symlink_metadata(dest.join("etc/sub/b")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "hard link kept");
    assert_eq!(
        std::fs::read_link(dest.join("abs")).unwrap(),
        Path::new("/etc/a")
    );
    assert_eq!(
        std::fs::read_link(dest.join("rel")).unwrap(),
        Path::new("etc/sub")
    );
    let n = std::fs::symlink_metadata(dest.join("null")).unwrap();
    assert!(n.file_type().is_char_device());
    assert_eq!(
        (n.rdev(), n.mode() & 0o7777),
        (nix::sys::stat::makedev(1, 3), 0o666)
    );
    assert_eq!(
        a.mtime(),
        std::fs::metadata(src.join("etc/a")).unwrap().mtime()
    );
    if have_xattr {
        let c = std::ffi::CString::new(dest.join("etc/a").to_str().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        // SAFETY: valid strings and a writable buffer.
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                c"user.lxrs".as_ptr(),
                buf.as_mut_ptr().cast(),
                16,
            )
        };
        assert_eq!(&buf[..n.max(0) as usize], b"v1", "xattr kept");
    }
    // the same tree as .tar.gz and .tar.zst
    let tar = {
        let mut d = xz2::read::XzDecoder::new(std::fs::File::open(&ar).unwrap());
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        v
    };
    let gz = tmp.path().join("r.tar.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(&tar).unwrap();
    e.finish().unwrap();
    let zst = tmp.path().join("r.tar.zst");
    std::fs::write(&zst, zstd::encode_all(&tar[..], 1).unwrap()).unwrap();
    for p in [gz, zst] {
        let d = tmp
            .path()
            .join(format!("d-{}", p.extension().unwrap().to_string_lossy()));
        std::fs::create_dir(&d).unwrap();
        lxrs_rootfs::unpack(&p, &d).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("etc/sub/b")).unwrap(),
            "hello"
        );
    }
}

//! Offline edits of a root filesystem: files written atomically with the mode and owner of the
//! file they replace, and accounts (`passwd`, `shadow`, `group`, `gshadow`) edited as text. Pure
//! file operations, no chroot: they work on a copied rootfs and on an overlay's upper directory
//! `r`, reading what `r` does not have yet from the lower layer `lower` (copy-up by hand).

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file to read `rel` from: `r/rel` unless it is missing, then `lower/rel`.
fn source(r: &Path, lower: Option<&Path>, rel: &str) -> Option<PathBuf> {
    let p = r.join(rel);
    if std::fs::symlink_metadata(&p).is_ok() {
        return Some(p);
    }
    let l = lower?.join(rel);
    std::fs::symlink_metadata(&l).is_ok().then_some(l)
}

/// `rel` of the rootfs (empty when it exists nowhere).
pub fn read_file(r: &Path, lower: Option<&Path>, rel: &str) -> std::io::Result<String> {
    match source(r, lower, rel) {
        Some(p) => std::fs::read_to_string(p),
        None => Ok(String::new()),
    }
}

/// Create `r/rel` and its missing parents, each with the mode and owner of the same directory
/// in `lower` (0755 root when it has none).
pub fn mkdir_like(r: &Path, lower: &Path, rel: &str) -> std::io::Result<()> {
    mkdirs(r, Some(lower), rel)
}

fn mkdirs(r: &Path, lower: Option<&Path>, rel: &str) -> std::io::Result<()> {
    let mut cur = PathBuf::new();
    for c in Path::new(rel).components() {
        cur.push(c);
        let p = r.join(&cur);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} exists and is not a directory",
                    p.display()
                )))
            }
            Err(_) => {}
        }
        let (mode, uid, gid) = lower
            .and_then(|l| std::fs::metadata(l.join(&cur)).ok())
            .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
            .unwrap_or((0o755, 0, 0));
        std::fs::create_dir(&p)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Write `r/rel` atomically (temp file, fsync, rename) with the mode and owner of the file it
/// replaces (or of `lower/rel`; else 0644 root). A symlink at `r/rel` is replaced, never
/// written through.
pub fn write_file(r: &Path, lower: Option<&Path>, rel: &str, content: &str) -> std::io::Result<()> {
    write_file_mode(r, lower, rel, content, None)
}

/// [`write_file`] with an explicit mode.
pub fn write_file_mode(
    r: &Path,
    lower: Option<&Path>,
    rel: &str,
    content: &str,
    mode: Option<u32>,
) -> std::io::Result<()> {
    if let Some(parent) = Path::new(rel)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        mkdirs(r, lower, &parent.to_string_lossy())?;
    }
    let p = r.join(rel);
    let like = source(r, lower, rel)
        .and_then(|s| std::fs::symlink_metadata(s).ok())
        .filter(|m| m.is_file());
    let (m, uid, gid) = like
        .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
        .unwrap_or((0o644, 0, 0));
    let mode = mode.unwrap_or(m);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = p.with_file_name(format!(".{name}.lxrs-new"));
    let _ = std::fs::remove_file(&tmp);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// `$6$<salt>$<hash>` (SHA-512 crypt, 5000 rounds, 16 random salt characters).
pub fn sha512_crypt(password: &str) -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut raw = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let salt: String = raw
        .iter()
        .map(|b| ALPHABET[(*b & 63) as usize] as char)
        .collect();
    sha512_crypt_salt(password, &salt)
}

/// SHA-512 crypt with a given salt (`[./0-9A-Za-z]{1,16}`).
pub fn sha512_crypt_salt(password: &str, salt: &str) -> std::io::Result<String> {
    let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
        .map_err(|e| std::io::Error::other(format!("sha512-crypt parameters: {e:?}")))?;
    let h = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
        .map_err(|e| std::io::Error::other(format!("sha512-crypt: {e:?}")))?;
    Ok(format!("$6${salt}${h}"))
}

fn days_since_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86400)
        .unwrap_or(0)
}

fn invalid(rel: &str, why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("/{rel}: {why}"))
}

/// Set `user`'s password hash in `etc/shadow` (`!` locks it).
pub fn set_password(r: &Path, lower: Option<&Path>, user: &str, hash: &str) -> std::io::Result<()> {
    let rel = "etc/shadow";
    let text = read_file(r, lower, rel)?;
    let mut found = false;
    let mut out = String::new();
    for l in text.lines() {
        let mut f: Vec<String> = l.split(':').map(str::to_string).collect();
        if f.first().map(String::as_str) == Some(user) && f.len() >= 3 {
            f[1] = hash.to_string();
            f[2] = days_since_epoch().to_string();
            found = true;
        }
        out.push_str(&f.join(":"));
        out.push('\n');
    }
    if !found {
        return Err(invalid(rel, format!("no user '{user}'")));
    }
    write_file(r, lower, rel, &out)
}

/// An account to make.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub name: &'a str,
    /// SHA-512 crypt hash; `None` = locked.
    pub hash: Option<&'a str>,
    /// Supplementary groups (made as system groups when the rootfs lacks them).
    pub groups: &'a [&'a str],
    pub shell: &'a str,
    pub gecos: &'a str,
}

fn ids(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect()
}

fn has_entry(text: &str, name: &str) -> bool {
    text.lines().any(|l| l.split(':').next() == Some(name))
}

/// Add `member` to group `group` in a group or gshadow text (member list = field `field`).
fn add_member(text: &str, group: &str, field: usize, member: &str) -> String {
    let mut out = String::new();
    for l in text.lines() {
        let mut f: Vec<String> = l.split(':').map(str::to_string).collect();
        if f.first().map(String::as_str) == Some(group) && f.len() > field {
            let mut m: Vec<&str> = f[field].split(',').filter(|x| !x.is_empty()).collect();
            if !m.contains(&member) {
                m.push(member);
            }
            f[field] = m.join(",");
        }
        out.push_str(&f.join(":"));
        out.push('\n');
    }
    out
}

/// Make `u` (with a private group of the same id, a home directory from `/etc/skel`, member of
/// `u.groups`), or, when it exists, set its password and group memberships. Returns its uid.
pub fn add_user(r: &Path, lower: Option<&Path>, u: &NewUser) -> std::io::Result<u32> {
    let mut passwd = read_file(r, lower, "etc/passwd")?;
    let mut shadow = read_file(r, lower, "etc/shadow")?;
    let mut group = read_file(r, lower, "etc/group")?;
    let mut gshadow = read_file(r, lower, "etc/gshadow")?;
    if passwd.is_empty() || group.is_empty() {
        return Err(invalid("etc/passwd", "missing or empty".into()));
    }
    for t in [&mut passwd, &mut shadow, &mut group, &mut gshadow] {
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
    }
    let hash = u.hash.unwrap_or("!");
    let existing = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(u.name))
        .and_then(|l| l.split(':').nth(2)?.parse::<u32>().ok());
    let (uid, new) = match existing {
        Some(uid) => (uid, false),
        None => {
            let (pu, gu) = (ids(&passwd), ids(&group));
            let uid = (1000..60000)
                .find(|i| !pu.contains(i) && !gu.contains(i))
                .ok_or_else(|| invalid("etc/passwd", "no free uid in 1000..60000".into()))?;
            (uid, true)
        }
    };
    let home = format!("home/{}", u.name);
    if new {
        passwd.push_str(&format!(
            "{n}:x:{uid}:{uid}:{g}:/{home}:{s}\n",
            n = u.name,
            g = u.gecos,
            s = u.shell
        ));
        if !has_entry(&group, u.name) {
            group.push_str(&format!("{}:x:{uid}:\n", u.name));
        }
        if !has_entry(&gshadow, u.name) {
            gshadow.push_str(&format!("{}:!::\n", u.name));
        }
        shadow.push_str(&format!(
            "{}:{hash}:{}:0:99999:7:::\n",
            u.name,
            days_since_epoch()
        ));
    }
    for g in u.groups {
        if !has_entry(&group, g) {
            let gu = ids(&group);
            let gid = (100..1000)
                .rev()
                .find(|i| !gu.contains(i))
                .ok_or_else(|| invalid("etc/group", "no free system gid".into()))?;
            group.push_str(&format!("{g}:x:{gid}:\n"));
        }
        if !has_entry(&gshadow, g) {
            gshadow.push_str(&format!("{g}:!::\n"));
        }
        group = add_member(&group, g, 3, u.name);
        gshadow = add_member(&gshadow, g, 3, u.name);
    }
    write_file(r, lower, "etc/passwd", &passwd)?;
    write_file(r, lower, "etc/group", &group)?;
    write_file(r, lower, "etc/gshadow", &gshadow)?;
    write_file(r, lower, "etc/shadow", &shadow)?;
    if !new {
        set_password(r, lower, u.name, hash)?;
        return Ok(uid);
    }
    mkdirs(r, lower, "home")?;
    let h = r.join(&home);
    if std::fs::symlink_metadata(&h).is_err() {
        std::fs::create_dir(&h)?;
    }
    std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o750))?;
    std::os::unix::fs::chown(&h, Some(uid), Some(uid))?;
    let skel = source(r, lower, "etc/skel");
    if let Some(skel) = skel.filter(|s| s.is_dir()) {
        for e in std::fs::read_dir(&skel)?.flatten() {
            let md = std::fs::symlink_metadata(e.path())?;
            if !md.is_file() {
                continue;
            }
            let dst = h.join(e.file_name());
            std::fs::copy(e.path(), &dst)?;
            std::os::unix::fs::chown(&dst, Some(uid), Some(uid))?;
        }
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_crypt_known_answer() {
        // the test vector of Drepper's SHA-crypt specification
        assert_eq!(
            sha512_crypt_salt("Hello world!", "saltstring").unwrap(),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        let a = sha512_crypt("pw").unwrap();
        let b = sha512_crypt("pw").unwrap();
        assert!(a.starts_with("$6$") && a != b, "random salts: {a} {b}");
    }

    fn etc(root: &Path) {
        std::fs::create_dir_all(root.join("etc/skel")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n").unwrap();
        std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        std::fs::set_permissions(
            root.join("etc/shadow"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nsudo:x:27:\nusers:x:100:\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/gshadow"), "root:*::\nsudo:*::\n").unwrap();
        std::fs::write(root.join("etc/skel/.bashrc"), "# bashrc\n").unwrap();
    }

    #[test]
    fn add_user_and_passwords_on_a_rootfs_and_an_overlay_upper() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        etc(&root);
        let uid = add_user(
            &root,
            None,
            &NewUser {
                name: "ubuntu",
                hash: Some("$6$x$y"),
                groups: &["sudo", "adm"],
                shell: "/bin/bash",
                gecos: "Ubuntu",
            },
        )
        .unwrap();
        assert_eq!(uid, 1000);
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.contains("ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"));
        let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
        assert!(shadow.contains("\nubuntu:$6$x$y:"), "{shadow}");
        assert!(shadow.starts_with("root:*:"), "root stays locked");
        let m = std::fs::metadata(root.join("etc/shadow")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o640, "shadow keeps its mode");
        let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
        assert!(group.contains("sudo:x:27:ubuntu\n"), "{group}");
        assert!(group.contains("ubuntu:x:1000:\n"), "{group}");
        assert!(
            group.contains("adm:x:999:ubuntu\n"),
            "missing group made: {group}"
        );
        let gs = std::fs::read_to_string(root.join("etc/gshadow")).unwrap();
        assert!(
            gs.contains("sudo:*::ubuntu\n") && gs.contains("ubuntu:!::\n"),
            "{gs}"
        );
        let home = std::fs::metadata(root.join("home/ubuntu")).unwrap();
        assert_eq!((home.uid(), home.mode() & 0o777), (1000, 0o750));
        assert_eq!(
            std::fs::metadata(root.join("home/ubuntu/.bashrc"))
                .unwrap()
                .uid(),
            1000
        );
        // again: the user exists; only the password changes
        add_user(
            &root,
            None,
            &NewUser {
                name: "ubuntu",
                hash: Some("$6$z$w"),
                groups: &["sudo"],
                shell: "/bin/bash",
                gecos: "Ubuntu",
            },
        )
        .unwrap();
        let passwd2 = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert_eq!(
            passwd2.lines().filter(|l| l.starts_with("ubuntu:")).count(),
            1
        );
        assert!(std::fs::read_to_string(root.join("etc/shadow"))
            .unwrap()
            .contains("ubuntu:$6$z$w:"));
        assert!(set_password(&root, None, "nosuch", "!").is_err());

        // an overlay upper directory: nothing in it yet; reads come from the lower layer
        let upper = tmp.path().join("upper");
        std::fs::create_dir(&upper).unwrap();
        add_user(
            &upper,
            Some(&root),
            &NewUser {
                name: "dev",
                hash: None,
                groups: &["sudo"],
                shell: "/bin/sh",
                gecos: "",
            },
        )
        .unwrap();
        let p = std::fs::read_to_string(upper.join("etc/passwd")).unwrap();
        assert!(p.contains("ubuntu:x:1000") && p.contains("dev:x:1001:1001::/home/dev:/bin/sh"));
        assert_eq!(
            std::fs::metadata(upper.join("etc/shadow")).unwrap().mode() & 0o777,
            0o640
        );
        assert!(upper.join("home/dev/.bashrc").is_file());
        // the lower layer is untouched
        assert!(!std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .contains("dev:"));
    }

    #[test]
    fn write_file_replaces_symlinks_and_keeps_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir(r.join("etc")).unwrap();
        let outside = r.join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, r.join("etc/hostname")).unwrap();
        write_file(r, None, "etc/hostname", "c1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(r.join("etc/hostname")).unwrap(),
            "c1\n"
        );
        write_file_mode(r, None, "etc/netplan/10-lxc.yaml", "x", Some(0o600)).unwrap();
        assert_eq!(
            std::fs::metadata(r.join("etc/netplan/10-lxc.yaml"))
                .unwrap()
                .mode()
                & 0o777,
            0o600
        );
    }
}

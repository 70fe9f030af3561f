//! Publishing a root filesystem as an image in a static simplestreams tree:
//! `images/<dist>/<release>/<arch>/<variant>/<build>/{rootfs.tar.xz,meta.tar.xz,SHA256SUMS}`,
//! `streams/v1/index.json`, `streams/v1/images.json` and LXC's `meta/1.0/index-system`.
//! Any static web server can serve the tree to `lxrs create -t download`.

use crate::images::{
    sha256_file, ImageError, ImageKey, Item, Product, Products, StreamsIndex, StreamsIndexEntry,
    Version,
};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Errors of [`publish`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pack(#[from] lxrs_rootfs::PackError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{path}: invalid JSON: {why}")]
    BadJson { path: PathBuf, why: String },
    #[error("image field {field} = '{value}' must be a plain name (no '/', ':', ';' or '..')")]
    BadKey { field: &'static str, value: String },
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub key: ImageKey,
    pub rootfs: &'a Path,
    /// `lxc.*` lines for the image's `config` (container-specific keys already removed).
    pub config: String,
    pub build_id: String,
    /// Expiry, seconds since the epoch.
    pub expiry: u64,
    pub create_message: String,
}

/// Result of a publish.
#[derive(Debug, Clone)]
pub struct Published {
    pub dir: PathBuf,
    pub rootfs_sha256: String,
    pub rootfs_size: u64,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PublishError {
    let path = path.to_path_buf();
    move |source| PublishError::Io { op, path, source }
}

/// Keys a container config must not carry into an image.
pub fn image_config(container_config: &str) -> String {
    let mut out = String::new();
    for l in container_config.lines() {
        let t = l.trim_start();
        if !t.starts_with("lxc.") {
            continue;
        }
        let k = t.split('=').next().unwrap_or("").trim();
        let skip = k.starts_with("lxc.rootfs")
            || k == "lxc.uts.name"
            || k == "lxc.utsname"
            || k.starts_with("lxc.net.")
            || k.starts_with("lxc.network.")
            || k == "lxc.mount.fstab"
            || k.starts_with("lxc.start.")
            || k == "lxc.group"
            || k.starts_with("lxc.log");
        if !skip {
            out.push_str(t);
            out.push('\n');
        }
    }
    out
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), PublishError> {
    use std::io::Write;
    let tmp = path.with_extension("lxrs-tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(data).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename into place", path))
}

/// Publish `req` into the tree at `dir` (created if need be), merging with what is there.
pub fn publish(dir: &Path, req: &Request<'_>) -> Result<Published, PublishError> {
    for (field, value) in [
        ("dist", &req.key.dist),
        ("release", &req.key.release),
        ("arch", &req.key.arch),
        ("variant", &req.key.variant),
        ("build", &req.build_id),
    ] {
        if value.is_empty() || value.contains(['/', ':', ';']) || value.contains("..") {
            return Err(PublishError::BadKey {
                field,
                value: value.clone(),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let lock_path = dir.join(".lxrs-publish.lock");
    let lock = std::fs::File::create(&lock_path).map_err(io("create", &lock_path))?;
    // SAFETY: flock on a valid, open descriptor owned by `lock`.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io("lock", &lock_path)(std::io::Error::last_os_error()));
    }
    let k = &req.key;
    let rel_dir = format!(
        "images/{}/{}/{}/{}/{}",
        k.dist, k.release, k.arch, k.variant, req.build_id
    );
    let img_dir = dir.join(&rel_dir);
    let partial = dir.join(format!("{rel_dir}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io("remove stale", &partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(io("create", &partial))?;
    let r = (|| -> Result<Published, PublishError> {
        let rootfs_tar = partial.join("rootfs.tar.xz");
        let f = std::fs::File::create(&rootfs_tar).map_err(io("create", &rootfs_tar))?;
        let f = lxrs_rootfs::pack_xz(req.rootfs, std::io::BufWriter::new(f), &rootfs_tar)?;
        f.into_inner()
            .map_err(|e| io("flush", &rootfs_tar)(e.into_error()))?
            .sync_all()
            .map_err(io("fsync", &rootfs_tar))?;

        let meta_src = partial.join("meta.src");
        std::fs::create_dir(&meta_src).map_err(io("create", &meta_src))?;
        std::fs::write(meta_src.join("config"), &req.config)
            .map_err(io("write", &meta_src.join("config")))?;
        std::fs::write(meta_src.join("expiry"), format!("{}\n", req.expiry))
            .map_err(io("write", &meta_src))?;
        std::fs::write(meta_src.join("create-message"), &req.create_message)
            .map_err(io("write", &meta_src))?;
        std::fs::write(meta_src.join("templates"), "").map_err(io("write", &meta_src))?;
        let meta_tar = partial.join("meta.tar.xz");
        let f = std::fs::File::create(&meta_tar).map_err(io("create", &meta_tar))?;
        lxrs_rootfs::pack_xz(&meta_src, f, &meta_tar)?
            .sync_all()
            .map_err(io("fsync", &meta_tar))?;
        std::fs::remove_dir_all(&meta_src).map_err(io("remove", &meta_src))?;

        let (rsha, rsize) = sha256_file(&rootfs_tar)?;
        let (msha, msize) = sha256_file(&meta_tar)?;
        std::fs::write(
            partial.join("SHA256SUMS"),
            format!("{rsha}  rootfs.tar.xz\n{msha}  meta.tar.xz\n"),
        )
        .map_err(io("write", &partial.join("SHA256SUMS")))?;
        if img_dir.exists() {
            std::fs::remove_dir_all(&img_dir).map_err(io("replace", &img_dir))?;
        }
        std::fs::rename(&partial, &img_dir).map_err(io("rename into place", &partial))?;

        // products file
        let streams = dir.join("streams/v1");
        std::fs::create_dir_all(&streams).map_err(io("create", &streams))?;
        let images_path = streams.join("images.json");
        let mut products: Products = match std::fs::read_to_string(&images_path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| PublishError::BadJson {
                path: images_path.clone(),
                why: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Products {
                format: "products:1.0".into(),
                datatype: "image-downloads".into(),
                content_id: "images".into(),
                products: BTreeMap::new(),
            },
            Err(e) => return Err(io("read", &images_path)(e)),
        };
        let pid = k.to_string();
        let prod = products
            .products
            .entry(pid.clone())
            .or_insert_with(|| Product {
                aliases: format!("{}/{}/{}", k.dist, k.release, k.variant),
                arch: k.arch.clone(),
                os: k.dist.clone(),
                release: k.release.clone(),
                release_title: k.release.clone(),
                variant: k.variant.clone(),
                versions: BTreeMap::new(),
            });
        let mut items = BTreeMap::new();
        items.insert(
            "rootfs.tar.xz".to_string(),
            Item {
                ftype: "root.tar.xz".into(),
                path: format!("{rel_dir}/rootfs.tar.xz"),
                sha256: rsha.clone(),
                size: rsize,
            },
        );
        items.insert(
            "meta.tar.xz".to_string(),
            Item {
                ftype: crate::images::META_FTYPE.into(),
                path: format!("{rel_dir}/meta.tar.xz"),
                sha256: msha,
                size: msize,
            },
        );
        prod.versions
            .insert(req.build_id.clone(), Version { items });
        let json = serde_json::to_vec_pretty(&products).expect("serialisable");
        write_atomic(&images_path, &json)?;

        let index = StreamsIndex {
            format: "index:1.0".into(),
            index: BTreeMap::from([(
                "images".to_string(),
                StreamsIndexEntry {
                    datatype: "image-downloads".into(),
                    path: "streams/v1/images.json".into(),
                    format: "products:1.0".into(),
                    products: products.products.keys().cloned().collect(),
                },
            )]),
        };
        write_atomic(
            &streams.join("index.json"),
            &serde_json::to_vec_pretty(&index).expect("serialisable"),
        )?;

        // LXC's CSV index: one line per product, the newest build
        let meta_dir = dir.join("meta/1.0");
        std::fs::create_dir_all(&meta_dir).map_err(io("create", &meta_dir))?;
        let mut csv = String::new();
        for p in products.products.values() {
            if let Some((b, v)) = p.versions.iter().next_back() {
                let Some(root) = v.items.values().find(|i| i.ftype.starts_with("root.")) else {
                    continue;
                };
                let d = root.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let _ = b;
                csv.push_str(&format!(
                    "{};{};{};{};{};/{}/\n",
                    p.os, p.release, p.arch, p.variant, b, d
                ));
            }
        }
        write_atomic(&meta_dir.join("index-system"), csv.as_bytes())?;
        Ok(Published {
            dir: img_dir.clone(),
            rootfs_sha256: rsha,
            rootfs_size: rsize,
        })
    })();
    if r.is_err() && partial.exists() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    r
}

/// `YYYYMMDD_HHMMSS` (UTC) for `secs` since the epoch.
pub fn build_id(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // civil-from-days (H. Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}_{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_config() {
        assert_eq!(build_id(0), "19700101_000000");
        assert_eq!(build_id(1_700_000_000), "20231114_221320");
        assert_eq!(build_id(951_782_400), "20000229_000000");
        let c = image_config("# x\nlxc.rootfs.path = dir:/a\nlxc.uts.name = c\nlxc.net.0.type = veth\nlxc.arch = amd64\nlxc.tty.max = 1\nfoo = bar\n");
        assert_eq!(c, "lxc.arch = amd64\nlxc.tty.max = 1\n");
    }
}

//! Image servers: simplestreams (`streams/v1/index.json` → `images.json`, SHA-256 and size per
//! file) and LXC's `meta/1.0/index-system` CSV (hashes from the image directory's
//! `SHA256SUMS`). Downloads are streamed to disk while hashed; a file is accepted only when its
//! size and SHA-256 match what the index says.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Errors of image index and download operations; each names the URL or file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("GET {url}: {why}")]
    Http { url: String, why: String },
    #[error("{url}: invalid index: {why}")]
    BadIndex { url: String, why: String },
    #[error(
        "no image {key} on {server} (see `lxrs create -t download -- --server {server} --list`)"
    )]
    NoSuchImage { key: String, server: String },
    #[error("{url}: SHA-256 mismatch: expected {expected}, got {actual}; the file was discarded")]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: truncated or wrong size: expected {expected} bytes, got {actual}; the file was discarded")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url}: no SHA-256 is published for this file; lxrs refuses unverified images")]
    NoHash { url: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which image: `dist;release;arch;variant`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageKey {
    pub dist: String,
    pub release: String,
    pub arch: String,
    pub variant: String,
}

impl std::fmt::Display for ImageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.dist, self.release, self.arch, self.variant
        )
    }
}

/// One file of an image, relative to the server root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// `rootfs.tar.xz`, `meta.tar.xz`, ...
    pub name: String,
    pub path: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

/// One image build on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub key: ImageKey,
    pub build_id: String,
    pub rootfs: ImageFile,
    pub meta: ImageFile,
}

/// `--server`: a host name means `https://HOST`; a URL is taken as given.
pub fn server_base(server: &str) -> String {
    let s = server.trim_end_matches('/');
    if s.contains("://") {
        s.to_string()
    } else {
        format!("https://{s}")
    }
}

/// The simplestreams `index.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamsIndex {
    pub format: String,
    pub index: BTreeMap<String, StreamsIndexEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StreamsIndexEntry {
    pub datatype: String,
    pub path: String,
    pub format: String,
    #[serde(default)]
    pub products: Vec<String>,
}

/// The simplestreams products file (`images.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Products {
    pub format: String,
    #[serde(default)]
    pub datatype: String,
    #[serde(default)]
    pub content_id: String,
    pub products: BTreeMap<String, Product>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Product {
    #[serde(default)]
    pub aliases: String,
    pub arch: String,
    pub os: String,
    pub release: String,
    #[serde(default)]
    pub release_title: String,
    pub variant: String,
    pub versions: BTreeMap<String, Version>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Version {
    pub items: BTreeMap<String, Item>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub ftype: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// Item ftypes of a root filesystem tarball and of LXC metadata.
pub const ROOTFS_FTYPES: &[&str] = &["root.tar.xz", "root.tar.zst", "root.tar.gz"];
pub const META_FTYPE: &str = "lxc.tar.xz";

/// Products → image entries (the newest version of each product).
pub fn entries_from_products(p: &Products, url: &str) -> Result<Vec<ImageEntry>, ImageError> {
    let mut out = Vec::new();
    for (id, prod) in &p.products {
        let Some((build_id, v)) = prod.versions.iter().next_back() else {
            continue;
        };
        let find = |pred: &dyn Fn(&str) -> bool| {
            v.items
                .iter()
                .find(|(_, it)| pred(&it.ftype))
                .map(|(name, it)| ImageFile {
                    name: Path::new(&it.path)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or(name.clone()),
                    path: it.path.clone(),
                    sha256: Some(it.sha256.to_ascii_lowercase()),
                    size: Some(it.size),
                })
        };
        let (Some(rootfs), Some(meta)) = (
            find(&|f| ROOTFS_FTYPES.contains(&f)),
            find(&|f| f == META_FTYPE),
        ) else {
            tracing::debug!("{url}: product {id} has no rootfs tarball + lxc metadata; skipped");
            continue;
        };
        let os = id.split(':').next().unwrap_or(&prod.os).to_string();
        out.push(ImageEntry {
            key: ImageKey {
                dist: os,
                release: prod.release.clone(),
                arch: prod.arch.clone(),
                variant: prod.variant.clone(),
            },
            build_id: build_id.clone(),
            rootfs,
            meta,
        });
    }
    Ok(out)
}

/// Parse LXC's `index-system` CSV.
pub fn entries_from_csv(text: &str) -> Vec<ImageEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split(';').collect();
        if f.len() < 6 || f[5].is_empty() {
            continue;
        }
        let dir = f[5].trim_matches('/');
        let file = |name: &str| ImageFile {
            name: name.into(),
            path: format!("{dir}/{name}"),
            sha256: None,
            size: None,
        };
        out.push(ImageEntry {
            key: ImageKey {
                dist: f[0].into(),
                release: f[1].into(),
                arch: f[2].into(),
                variant: f[3].into(),
            },
            build_id: f[4].into(),
            rootfs: file("rootfs.tar.xz"),
            meta: file("meta.tar.xz"),
        });
    }
    out
}

/// Parse a `SHA256SUMS` file (`HEX  NAME` lines).
pub fn parse_sha256sums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let h = it.next()?;
            let n = it.next()?.trim_start_matches('*');
            Some((
                Path::new(n).file_name()?.to_string_lossy().into_owned(),
                h.to_ascii_lowercase(),
            ))
        })
        .collect()
}

/// A client of one image server.
pub struct Client {
    http: reqwest::blocking::Client,
    pub base: String,
}

impl Client {
    pub fn new(server: &str) -> Result<Client, ImageError> {
        let base = server_base(server);
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("lxrs/", env!("CARGO_PKG_VERSION"), " compat:7"))
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| ImageError::Http {
                url: base.clone(),
                why: e.to_string(),
            })?;
        Ok(Client { http, base })
    }

    pub fn url(&self, rel: &str) -> String {
        format!("{}/{}", self.base, rel.trim_start_matches('/'))
    }

    fn get(&self, url: &str) -> Result<Option<reqwest::blocking::Response>, ImageError> {
        let r = self.http.get(url).send().map_err(|e| ImageError::Http {
            url: url.into(),
            why: error_chain(&e),
        })?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(ImageError::Http {
                url: url.into(),
                why: r.status().to_string(),
            });
        }
        Ok(Some(r))
    }

    fn get_text(&self, rel: &str) -> Result<Option<String>, ImageError> {
        let url = self.url(rel);
        match self.get(&url)? {
            None => Ok(None),
            Some(r) => r.text().map(Some).map_err(|e| ImageError::Http {
                url,
                why: error_chain(&e),
            }),
        }
    }

    /// Every image the server offers: simplestreams if it has `streams/v1/index.json`, else
    /// LXC's `meta/1.0/index-system`.
    pub fn index(&self) -> Result<Vec<ImageEntry>, ImageError> {
        let idx_rel = "streams/v1/index.json";
        if let Some(t) = self.get_text(idx_rel)? {
            let url = self.url(idx_rel);
            let idx: StreamsIndex = serde_json::from_str(&t).map_err(|e| ImageError::BadIndex {
                url: url.clone(),
                why: e.to_string(),
            })?;
            let mut out = Vec::new();
            for (_, e) in idx
                .index
                .iter()
                .filter(|(_, e)| e.datatype == "image-downloads")
            {
                let purl = self.url(&e.path);
                let t = self.get_text(&e.path)?.ok_or_else(|| ImageError::Http {
                    url: purl.clone(),
                    why: "404 Not Found".into(),
                })?;
                let p: Products = serde_json::from_str(&t).map_err(|e| ImageError::BadIndex {
                    url: purl.clone(),
                    why: e.to_string(),
                })?;
                out.extend(entries_from_products(&p, &purl)?);
            }
            return Ok(out);
        }
        for rel in ["meta/1.0/index-system.7", "meta/1.0/index-system"] {
            if let Some(t) = self.get_text(rel)? {
                return Ok(entries_from_csv(&t));
            }
        }
        Err(ImageError::Http {
            url: self.url(idx_rel),
            why: format!(
                "404 Not Found (and no {})",
                self.url("meta/1.0/index-system")
            ),
        })
    }

    /// Fill in hashes of a CSV-indexed image from its directory's `SHA256SUMS`.
    pub fn complete_hashes(&self, e: &mut ImageEntry) -> Result<(), ImageError> {
        if e.rootfs.sha256.is_some() && e.meta.sha256.is_some() {
            return Ok(());
        }
        let dir = e
            .rootfs
            .path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let rel = format!("{dir}/SHA256SUMS");
        let sums = self
            .get_text(&rel)?
            .map(|t| parse_sha256sums(&t))
            .unwrap_or_default();
        for f in [&mut e.rootfs, &mut e.meta] {
            if f.sha256.is_none() {
                f.sha256 = sums.get(&f.name).cloned();
            }
        }
        Ok(())
    }

    /// Download `f` to `dest`, hashing on the way; remove `dest` and fail unless size and
    /// SHA-256 match. A progress line is drawn when `progress` (stderr is a terminal).
    pub fn download(&self, f: &ImageFile, dest: &Path, progress: bool) -> Result<(), ImageError> {
        let url = self.url(&f.path);
        let Some(expected) = f.sha256.clone() else {
            return Err(ImageError::NoHash { url });
        };
        let r = self.download_inner(f, &url, &expected, dest, progress);
        if r.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        r
    }

    fn download_inner(
        &self,
        f: &ImageFile,
        url: &str,
        expected: &str,
        dest: &Path,
        progress: bool,
    ) -> Result<(), ImageError> {
        let mut r = self.get(url)?.ok_or_else(|| ImageError::Http {
            url: url.into(),
            why: "404 Not Found".into(),
        })?;
        let total = f.size.or(r.content_length());
        let io = |op: &'static str| {
            move |source| ImageError::Io {
                op,
                path: dest.to_path_buf(),
                source,
            }
        };
        let mut out = std::fs::File::create(dest).map_err(io("create"))?;
        let mut h = Sha256::new();
        let mut n: u64 = 0;
        let mut buf = vec![0u8; 1 << 16];
        let mut last_pct = u64::MAX;
        loop {
            let k = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ImageError::Http {
                        url: url.into(),
                        why: format!("after {n} bytes: {e} (truncated download)"),
                    })
                }
            };
            h.update(&buf[..k]);
            out.write_all(&buf[..k]).map_err(io("write"))?;
            n += k as u64;
            if let (true, Some(t)) = (progress, total) {
                let pct = (n * 100).checked_div(t).unwrap_or(100);
                if pct != last_pct {
                    last_pct = pct;
                    eprint!(
                        "\rDownloading {}: {pct:3}% ({} / {} KiB)",
                        f.name,
                        n / 1024,
                        t / 1024
                    );
                }
            }
        }
        if progress {
            eprintln!();
        }
        out.sync_all().map_err(io("fsync"))?;
        if let Some(sz) = f.size {
            if sz != n {
                return Err(ImageError::SizeMismatch {
                    url: url.into(),
                    expected: sz,
                    actual: n,
                });
            }
        }
        let actual = hex::encode(h.finalize());
        if actual != expected {
            return Err(ImageError::HashMismatch {
                url: url.into(),
                expected: expected.into(),
                actual,
            });
        }
        Ok(())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// SHA-256 and size of a file.
pub fn sha256_file(p: &Path) -> Result<(String, u64), ImageError> {
    let mut f = std::fs::File::open(p).map_err(|source| ImageError::Io {
        op: "open",
        path: p.into(),
        source,
    })?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|source| ImageError::Io {
        op: "read",
        path: p.into(),
        source,
    })?;
    Ok((hex::encode(h.finalize()), n))
}

/// `--list` output, LXC's modern layout.
pub fn format_list(entries: &[ImageEntry]) -> String {
    let mut v: Vec<&ImageEntry> = entries.iter().collect();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    let mut s = String::from("---\n");
    s.push_str(&format!(
        "{:<15}  {:<10}  {:<5}  {:<7}  {:<14}\n",
        "DIST", "RELEASE", "ARCH", "VARIANT", "BUILD"
    ));
    s.push_str("---\n");
    for e in v {
        s.push_str(&format!(
            "{:<15}  {:<10}  {:<5}  {:<7}  {:<14}\n",
            e.key.dist, e.key.release, e.key.arch, e.key.variant, e.build_id
        ));
    }
    s.push_str("---\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_csv() {
        assert_eq!(
            server_base("images.example.org"),
            "https://images.example.org"
        );
        assert_eq!(
            server_base("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
        let e = entries_from_csv("ubuntu;jammy;amd64;default;20240101_07:42;/images/ubuntu/jammy/amd64/default/20240101_07:42/\nbad;line\nx;y;z;w;1;\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key.to_string(), "ubuntu:jammy:amd64:default");
        assert_eq!(
            e[0].rootfs.path,
            "images/ubuntu/jammy/amd64/default/20240101_07:42/rootfs.tar.xz"
        );
        let s = parse_sha256sums("ABC  rootfs.tar.xz\ndef *./meta.tar.xz\n");
        assert_eq!(s["rootfs.tar.xz"], "abc");
        assert_eq!(s["meta.tar.xz"], "def");
        assert!(
            format_list(&e).contains("ubuntu           jammy       amd64  default  20240101_07:42")
        );
    }
}

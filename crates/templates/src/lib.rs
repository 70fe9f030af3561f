//! lxrs-templates: what fills a new container's rootfs and adds to its config.
//!
//! Two kinds of template, one convention (LXC's, `lxc.container.conf` section 7.1 of the
//! reference): a template gets the container path, name and rootfs, plus the user's arguments
//! after `--`, fills the rootfs and *appends* to `<path>/config`.
//!
//! * built-ins, written in Rust: `busybox`;
//! * executable templates: `/usr/share/lxrs/templates/lxc-NAME`, then LXC's own
//!   `/usr/share/lxc/templates/lxc-NAME`, or an absolute path.
//!
//! ```no_run
//! use lxrs_templates::{resolve, SearchPath, TemplateRun};
//! let t = resolve("busybox", &SearchPath::default()).unwrap();
//! let run = TemplateRun {
//!     name: "c1".into(),
//!     path: "/var/lib/lxrs/c1".into(),
//!     rootfs: "/var/lib/lxrs/c1/rootfs".into(),
//!     args: vec![],
//!     quiet: false,
//! };
//! t.run(&run).unwrap();
//! ```

pub mod accounts;
pub mod busybox;
pub mod cache;
pub mod cloud;
pub mod confwrite;
pub mod debian;
pub mod debootstrap;
pub mod download;
mod external;
pub mod images;
pub mod publish;
pub mod sshd;
pub mod ubuntu;

use std::path::{Path, PathBuf};

/// Errors of template resolution and runs.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template '{name}' not found (looked for a built-in, then {searched})")]
    NotFound { name: String, searched: String },
    #[error("template {path} is not executable")]
    NotExecutable { path: PathBuf },
    #[error("template '{template}' needs the host tool '{tool}' (Debian package: {package})")]
    MissingTool {
        template: String,
        tool: String,
        package: String,
    },
    #[error("template '{template}': no archive keyring {path} to check the Release file against ({hint})")]
    MissingKeyring {
        template: String,
        path: PathBuf,
        hint: String,
    },
    #[error("template '{template}': bad argument '{arg}': {why}")]
    BadArgument {
        template: String,
        arg: String,
        why: String,
    },
    #[error("template {template} failed: {status}")]
    Failed { template: String, status: String },
    #[error(transparent)]
    Image(#[from] images::ImageError),
    #[error(transparent)]
    Unpack(#[from] lxrs_rootfs::UnpackError),
    #[error("template '{template}': {op} {path}: {source}")]
    Io {
        template: String,
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl TemplateError {
    /// A bad argument of `template`.
    pub(crate) fn bad(template: &str, arg: &str, why: &str) -> Self {
        TemplateError::BadArgument {
            template: template.into(),
            arg: arg.into(),
            why: why.into(),
        }
    }

    /// Write a container config atomically (lxrs-config's write, fsync, rename).
    pub(crate) fn write_config(
        template: &str,
        path: &Path,
        text: &str,
    ) -> Result<(), TemplateError> {
        lxrs_config::write_atomic(path, text.as_bytes()).map_err(|e| TemplateError::Io {
            template: template.into(),
            op: "write",
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Maps an I/O error of `op` on `path` to an error naming `template`.
    pub(crate) fn io(
        template: &'static str,
        op: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| TemplateError::Io {
            template: template.into(),
            op,
            path,
            source,
        }
    }
}

/// A template's arguments after `--`, option by option: `-k V`, `--key V` and `--key=V`.
pub(crate) struct OptionArgs<'a> {
    template: &'a str,
    rest: std::slice::Iter<'a, String>,
    inline: Option<&'a str>,
}

impl<'a> OptionArgs<'a> {
    pub(crate) fn new(template: &'a str, args: &'a [String]) -> Self {
        OptionArgs {
            template,
            rest: args.iter(),
            inline: None,
        }
    }

    /// The next option (`--key` for `--key=V`), `None` at the end.
    pub(crate) fn next_key(&mut self) -> Option<&'a str> {
        let a = self.rest.next()?;
        match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => {
                self.inline = Some(v);
                Some(k)
            }
            _ => {
                self.inline = None;
                Some(a.as_str())
            }
        }
    }

    /// The value of the option `key` just returned: after its `=`, else the next argument.
    pub(crate) fn value(&mut self, key: &str) -> Result<String, TemplateError> {
        match self.inline.take() {
            Some(v) => Ok(v.to_string()),
            None => self
                .rest
                .next()
                .cloned()
                .ok_or_else(|| TemplateError::bad(self.template, key, "needs a value")),
        }
    }
}

/// Where executable templates are looked for, in order.
#[derive(Debug, Clone)]
pub struct SearchPath {
    pub dirs: Vec<PathBuf>,
}

impl Default for SearchPath {
    fn default() -> Self {
        SearchPath {
            dirs: vec![
                "/usr/share/lxrs/templates".into(),
                "/usr/share/lxc/templates".into(),
            ],
        }
    }
}

/// One template run: the arguments of LXC's convention.
#[derive(Debug, Clone)]
pub struct TemplateRun {
    /// `--name`
    pub name: String,
    /// `--path`: the container directory (holds `config`).
    pub path: PathBuf,
    /// `--rootfs`
    pub rootfs: PathBuf,
    /// The user's arguments after `--`.
    pub args: Vec<String>,
    /// Template output to /dev/null (`create -q`).
    pub quiet: bool,
}

impl TemplateRun {
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config")
    }
}

/// A resolved template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    Busybox,
    Debian,
    Ubuntu,
    Download,
    Sshd,
    Cloud,
    Script(PathBuf),
}

/// Built-in templates and what they are.
pub const BUILTINS: &[(&str, &str)] = &[
    ("busybox", "a minimal system from the host's busybox-static"),
    (
        "debian",
        "Debian (systemd) bootstrapped by the host's debootstrap, cached",
    ),
    (
        "ubuntu",
        "Ubuntu (systemd, user ubuntu) bootstrapped by the host's debootstrap, cached",
    ),
    (
        "download",
        "a verified image from a simplestreams or LXC image server (lxrs publish makes them)",
    ),
    (
        "sshd",
        "an application container running the host's sshd (host /usr bound read-only)",
    ),
    (
        "cloud",
        "a cloud image (rootfs tarball, file or verified URL) with a cloud-init NoCloud seed",
    ),
];

/// Find a template by name or path: built-ins first, then `lxc-NAME` in each search dir.
pub fn resolve(name: &str, search: &SearchPath) -> Result<Template, TemplateError> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return check_script(&p).map(|_| Template::Script(p));
    }
    if name == "busybox" {
        return Ok(Template::Busybox);
    }
    if name == "debian" {
        return Ok(Template::Debian);
    }
    if name == "ubuntu" {
        return Ok(Template::Ubuntu);
    }
    if name == "download" {
        return Ok(Template::Download);
    }
    if name == "sshd" {
        return Ok(Template::Sshd);
    }
    if name == "cloud" {
        return Ok(Template::Cloud);
    }
    for d in &search.dirs {
        let p = d.join(format!("lxc-{name}"));
        if p.exists() {
            return check_script(&p).map(|_| Template::Script(p));
        }
    }
    let searched = search
        .dirs
        .iter()
        .map(|d| format!("{}/lxc-{name}", d.display()))
        .collect::<Vec<_>>()
        .join(", ");
    Err(TemplateError::NotFound {
        name: name.to_string(),
        searched,
    })
}

fn check_script(p: &Path) -> Result<(), TemplateError> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(p).map_err(|source| TemplateError::Io {
        template: p.display().to_string(),
        op: "stat",
        path: p.to_path_buf(),
        source,
    })?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(TemplateError::NotExecutable {
            path: p.to_path_buf(),
        });
    }
    Ok(())
}

impl Template {
    /// What `# Template used to create this container:` says.
    pub fn describe(&self) -> String {
        match self {
            Template::Busybox => "busybox (built-in)".into(),
            Template::Download => "download (built-in)".into(),
            Template::Debian => "debian (built-in)".into(),
            Template::Ubuntu => "ubuntu (built-in)".into(),
            Template::Sshd => "sshd (built-in)".into(),
            Template::Cloud => "cloud (built-in)".into(),
            Template::Script(p) => p.display().to_string(),
        }
    }

    /// Run it: fill `run.rootfs` and append to `<run.path>/config`.
    pub fn run(&self, run: &TemplateRun) -> Result<(), TemplateError> {
        match self {
            Template::Busybox => busybox::run(run),
            Template::Download => download::run(run),
            Template::Debian => debian::run(run),
            Template::Ubuntu => ubuntu::run(run),
            Template::Sshd => sshd::run(run),
            Template::Cloud => cloud::run(run),
            Template::Script(p) => external::run(p, run),
        }
    }

    /// Whether the template can make a rootfs on `backend` (overlay needs a cached rootfs to
    /// be the lower layer: `debian`, `ubuntu`).
    pub fn supports(&self, backend: lxrs_rootfs::Backend) -> bool {
        backend == lxrs_rootfs::Backend::Dir || matches!(self, Template::Debian | Template::Ubuntu)
    }

    /// Run it on a storage backend: for `Overlay`, `run.rootfs` is the (empty) mount point and
    /// the template sets `lxc.rootfs.path = overlay:<cache>:<path>/delta0`.
    pub fn run_on(
        &self,
        run: &TemplateRun,
        backend: lxrs_rootfs::Backend,
    ) -> Result<(), TemplateError> {
        match (self, backend) {
            (_, lxrs_rootfs::Backend::Dir) => self.run(run),
            (Template::Debian, lxrs_rootfs::Backend::Overlay) => debian::run_overlay(run),
            (Template::Ubuntu, lxrs_rootfs::Backend::Overlay) => ubuntu::run_overlay(run),
            (t, b) => Err(TemplateError::BadArgument {
                template: t.describe(),
                arg: format!("-B {b:?}").to_lowercase(),
                why: "this template cannot make that storage backend (overlay: use -t debian or -t ubuntu)"
                    .into(),
            }),
        }
    }

    /// Check the template's arguments and host tools before anything is created.
    pub fn preflight(&self, args: &[String]) -> Result<(), TemplateError> {
        match self {
            Template::Debian => debian::preflight(args).map(|_| ()),
            Template::Ubuntu => ubuntu::preflight(args).map(|_| ()),
            Template::Sshd => sshd::preflight(args).map(|_| ()),
            Template::Cloud => cloud::preflight(args).map(|_| ()),
            Template::Download => download::parse(args).map(|_| ()),
            Template::Busybox | Template::Script(_) => Ok(()),
        }
    }

    /// Print the template's own help (`lxrs create -t T -h`).
    pub fn help(&self) -> Result<String, TemplateError> {
        match self {
            Template::Busybox => Ok(busybox::HELP.to_string()),
            Template::Download => Ok(download::HELP.to_string()),
            Template::Debian => Ok(debian::HELP.to_string()),
            Template::Ubuntu => Ok(ubuntu::HELP.to_string()),
            Template::Sshd => Ok(sshd::HELP.to_string()),
            Template::Cloud => Ok(cloud::HELP.to_string()),
            Template::Script(p) => external::help(p),
        }
    }
}

/// Every template available: (name, where it comes from).
pub fn list(search: &SearchPath) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = BUILTINS
        .iter()
        .map(|(n, d)| (n.to_string(), format!("built-in: {d}")))
        .collect();
    for d in &search.dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut names: Vec<_> = rd
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("lxc-"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        for n in names {
            if !v.iter().any(|(m, _)| *m == n) {
                v.push((n.clone(), d.join(format!("lxc-{n}")).display().to_string()));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn resolution_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            let p = d.join("lxc-foo");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let sp = SearchPath {
            dirs: vec![a.path().into(), b.path().into()],
        };
        assert_eq!(resolve("busybox", &sp).unwrap(), Template::Busybox);
        assert_eq!(
            resolve("foo", &sp).unwrap(),
            Template::Script(a.path().join("lxc-foo"))
        );
        std::fs::remove_file(a.path().join("lxc-foo")).unwrap();
        assert_eq!(
            resolve("foo", &sp).unwrap(),
            Template::Script(b.path().join("lxc-foo"))
        );
        let err = resolve("nope", &sp).unwrap_err().to_string();
        assert!(err.contains("template 'nope' not found"), "{err}");
        std::fs::set_permissions(
            b.path().join("lxc-foo"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            resolve("foo", &sp),
            Err(TemplateError::NotExecutable { .. })
        ));
        let l = list(&sp);
        assert_eq!(l[0].0, "busybox");
        assert!(l.iter().any(|(n, _)| n == "foo"));
    }
}

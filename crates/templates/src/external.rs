//! LXC's executable-template convention (reference section 7.1).

use crate::{TemplateError, TemplateRun};
use std::path::Path;
use std::process::{Command, Stdio};

/// argv after argv0: `--path= --name= --rootfs=` then the user's arguments.
pub(crate) fn argv(run: &TemplateRun) -> Vec<String> {
    let mut v = vec![
        format!("--path={}", run.path.display()),
        format!("--name={}", run.name),
        format!("--rootfs={}", run.rootfs.display()),
    ];
    v.extend(run.args.iter().cloned());
    v
}

pub(crate) fn run(script: &Path, run: &TemplateRun) -> Result<(), TemplateError> {
    let mut cmd = Command::new(script);
    cmd.args(argv(run));
    if run.quiet {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    tracing::info!("running template {} {:?}", script.display(), argv(run));
    let status = cmd.status().map_err(|source| TemplateError::Io {
        template: script.display().to_string(),
        op: "execute",
        path: script.to_path_buf(),
        source,
    })?;
    if !status.success() {
        return Err(TemplateError::Failed {
            template: script.display().to_string(),
            status: status.to_string(),
        });
    }
    Ok(())
}

pub(crate) fn help(script: &Path) -> Result<String, TemplateError> {
    let out = Command::new(script)
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TemplateError::Io {
            template: script.display().to_string(),
            op: "execute",
            path: script.to_path_buf(),
            source,
        })?;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn runs_with_lxc_arguments_and_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("lxc-t");
        std::fs::write(&script, "#!/bin/sh\necho \"$0 $*\" > \"${1#--path=}/args\"\necho 'lxc.uts.name = x' >> \"${1#--path=}/config\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(tmp.path().join("config"), "lxc.arch = x86_64\n").unwrap();
        let r = TemplateRun {
            name: "c1".into(),
            path: tmp.path().into(),
            rootfs: tmp.path().join("rootfs"),
            args: vec!["--release".into(), "bookworm".into()],
            quiet: true,
        };
        run(&script, &r).unwrap();
        let args = std::fs::read_to_string(tmp.path().join("args")).unwrap();
        assert_eq!(
            args.trim(),
            format!(
                "{} --path={} --name=c1 --rootfs={}/rootfs --release bookworm",
                script.display(),
                tmp.path().display(),
                tmp.path().display()
            )
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("config")).unwrap(),
            "lxc.arch = x86_64\nlxc.uts.name = x\n"
        );
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        let e = run(&script, &r).unwrap_err().to_string();
        assert!(e.contains("exit status: 3"), "{e}");
    }
}

//! Root integration tests of the built-in `sshd` and `cloud` templates, driving the real `lxrs`
//! binary with a temporary lxcpath per test.
//!
//! * sshd: missing host tools are named (with their Debian package) before anything is
//!   created; a container made with `--auth-key` runs the host's sshd as init, and the `ssh`
//!   client logs in over a veth on a bridge inside a network namespace the test owns (the host
//!   key checked against the one the template generated) and runs `hostname`.
//! * cloud: a busybox rootfs tarball made by the test, from a file and from a URL served on
//!   127.0.0.1 (SHA-256 verified); the NoCloud seed matches the arguments byte for byte; the
//!   generated user-data is `#cloud-config` YAML (parsed by PyYAML, as cloud-init does); bad
//!   arguments fail naming the file and leave no container; the container boots busybox init.
//!
//! `LXRS_BIN` may name the binary to test (default: this package's `lxrs`).

mod lifecycle_common;
mod net_common;
mod template_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lifecycle_common::text;
use template_common::{http_server, Reply, T};

impl T {
    /// A busybox rootfs tarball (`lxrs create -t busybox`, tarred by the host's tar), the
    /// source container destroyed again.
    fn busybox_tarball(&self) -> PathBuf {
        let cfg = self.nonet();
        self.ok(&["-q", "create", "-t", "busybox", "-n", "imgsrc", "-f", &cfg]);
        let tar = self.path("image.tar.xz");
        let st = Command::new("tar")
            .arg("-C")
            .arg(self.container_dir("imgsrc").join("rootfs"))
            .args(["--numeric-owner", "-cJf"])
            .arg(&tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(st.success(), "tar failed");
        self.ok(&["destroy", "-n", "imgsrc"]);
        tar
    }
}

/// A client key pair made by the host's ssh-keygen in `dir`: (private key, public key text).
fn client_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let k = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lxrs-test", "-f"])
        .arg(&k)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (openssh-client; cargo xtask install-deps installs it)");
    assert!(st.success());
    let pubkey = std::fs::read_to_string(k.with_extension("pub")).unwrap();
    (k, pubkey)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

// ---------------------------------------------------------------------------------------------
// sshd

#[test]
fn sshd_missing_tools_and_key_are_named_before_anything_is_created() {
    let t = T::new();
    let cfg = t.nonet();
    // no sshd at all
    let o = t
        .cmd(&["create", "-n", "s", "-t", "sshd", "-f", &cfg])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("'sshd'") && e.contains("Debian package: openssh-server"),
        "{e}"
    );
    assert!(!t.container_dir("s").exists(), "nothing may be created");
    // sshd but no ssh-keygen
    let only = t.path("only-sshd");
    std::fs::create_dir(&only).unwrap();
    std::os::unix::fs::symlink("/usr/sbin/sshd", only.join("sshd")).unwrap();
    let o = t
        .cmd(&["create", "-n", "s", "-t", "sshd", "-f", &cfg])
        .env("PATH", &only)
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("'ssh-keygen'") && e.contains("Debian package: openssh-client"),
        "{e}"
    );
    assert!(!t.container_dir("s").exists());
    // a key file that is not there
    let missing = t.path("nokey.pub");
    let e = t.fails(&[
        "create",
        "-n",
        "s",
        "-t",
        "sshd",
        "-f",
        &cfg,
        "--",
        "--auth-key",
        missing.to_str().unwrap(),
    ]);
    assert!(e.contains(missing.to_str().unwrap()), "{e}");
    assert!(!t.container_dir("s").exists());
    // an unknown option
    let e = t.fails(&[
        "create", "-n", "s", "-t", "sshd", "-f", &cfg, "--", "--bogus",
    ]);
    assert!(e.contains("--bogus"), "{e}");
    assert!(!t.container_dir("s").exists());
}

#[test]
fn sshd_and_cloud_help_follow_create_help() {
    let t = T::new();
    let h = t.ok(&["create", "-t", "sshd", "-h"]);
    assert!(h.contains("--template"), "create's own help first: {h}");
    assert!(
        h.contains("sshd (built-in)") && h.contains("--auth-key") && h.contains("openssh-server"),
        "{h}"
    );
    let h = t.ok(&["create", "-t", "cloud", "-h"]);
    assert!(
        h.contains("cloud (built-in)")
            && h.contains("--image FILE|URL")
            && h.contains("--sha256")
            && h.contains("--userdata")
            && h.contains("nocloud-net"),
        "{h}"
    );
    let l = t.ok(&["templates"]);
    assert!(
        l.lines()
            .any(|x| x.contains("sshd") && x.contains("built-in")),
        "{l}"
    );
    assert!(
        l.lines()
            .any(|x| x.contains("cloud") && x.contains("built-in")),
        "{l}"
    );
}

/// `ssh` from the test's network namespace to the container.
fn ssh(env: &net_common::Env, key: &Path, known_hosts: &Path, addr: &str, cmd: &str) -> Output {
    let mut c = Command::new("ssh");
    c.args(["-F", "/dev/null", "-i"])
        .arg(key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "HostKeyAlgorithms=ssh-ed25519",
            "-o",
            "ConnectTimeout=3",
            "-o",
            "ConnectionAttempts=1",
        ])
        .arg(format!("root@{addr}"))
        .arg(cmd)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    env.enter_host(&mut c);
    c.output().expect("run ssh (openssh-client)")
}

#[test]
fn sshd_container_serves_ssh_on_a_veth_in_a_test_netns() {
    let env = net_common::Env::new();
    env.bridge("br0", None, &[("10.231.0.1", 24)]);
    let (key, pubkey) = client_key(env.dir.path(), "id_test");
    let (other_key, _) = client_key(env.dir.path(), "id_other");
    let cfg = env.dir.path().join("s1.conf");
    std::fs::write(
        &cfg,
        "lxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.net.0.flags = up\n\
         lxc.net.0.name = eth0\nlxc.net.0.ipv4.address = 10.231.0.2/24\n",
    )
    .unwrap();
    let pubfile = key.with_extension("pub");
    env.ok(&[
        "create",
        "-n",
        "s1",
        "-t",
        "sshd",
        "-f",
        cfg.to_str().unwrap(),
        "--",
        "--auth-key",
        pubfile.to_str().unwrap(),
    ]);
    let dir = env.lxcpath.join("s1");
    let root = dir.join("rootfs");
    let conf = std::fs::read_to_string(dir.join("config")).unwrap();
    assert!(
        conf.contains("lxc.init.cmd = /usr/sbin/sshd -D -e\n"),
        "{conf}"
    );
    assert!(
        conf.contains("lxc.mount.entry = /usr usr none ro,bind 0 0\n"),
        "{conf}"
    );
    assert!(
        conf.contains("lxc.net.0.ipv4.address = 10.231.0.2/24"),
        "the template appends: {conf}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap(),
        pubkey
    );
    assert_eq!(mode(&root.join("root/.ssh/authorized_keys")), 0o600);
    assert_eq!(mode(&root.join("root/.ssh")), 0o700);
    for k in ["ed25519", "ecdsa", "rsa"] {
        let p = root.join(format!("etc/ssh/ssh_host_{k}_key"));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    // the container's own host key, generated for it (not the host's)
    let hostkey = std::fs::read_to_string(root.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    if let Ok(h) = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub") {
        assert_ne!(h, hostkey);
    }
    let known_hosts = env.dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("10.231.0.2 {hostkey}")).unwrap();

    let o = env.start("s1");
    assert!(o.status.success(), "start: {}", text(&o.stderr));
    // sshd is the container's init
    let o = env.exec_in("s1", &["cat", "/proc/1/cmdline"]);
    let init = text(&o.stdout).replace('\0', " ");
    assert!(
        init.contains("/usr/sbin/sshd") && init.contains("-D"),
        "PID 1: {init:?} {}",
        text(&o.stderr)
    );
    // the host's /usr is there, read-only
    let o = env.exec_in("s1", &["touch", "/usr/lxrs-template-test"]);
    assert!(
        !o.status.success(),
        "/usr must be read-only in the container"
    );
    assert!(!Path::new("/usr/lxrs-template-test").exists());

    // log in over the veth (retry while sshd comes up)
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let o = ssh(
            &env,
            &key,
            &known_hosts,
            "10.231.0.2",
            "hostname; cat /proc/1/comm",
        );
        if o.status.success() || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        out.status.success(),
        "ssh failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "s1\nsshd\n");
    // another key is refused
    let o = ssh(&env, &other_key, &known_hosts, "10.231.0.2", "hostname");
    assert!(
        !o.status.success(),
        "a key not in authorized_keys logged in"
    );
    assert!(
        text(&o.stderr).contains("Permission denied"),
        "{}",
        text(&o.stderr)
    );

    // SIGTERM (the template's halt signal) stops sshd cleanly, without a kill
    env.ok(&["stop", "-n", "s1", "-t", "20", "--nokill"]);
    assert_eq!(env.state("s1"), "STOPPED");
    env.ok(&["destroy", "-n", "s1"]);
    assert!(!dir.exists());
}

// ---------------------------------------------------------------------------------------------
// cloud

const SEED: &str = "rootfs/var/lib/cloud/seed/nocloud-net";

#[test]
fn cloud_from_a_tarball_writes_the_seed_exactly_and_boots() {
    let t = T::new();
    let img = t.busybox_tarball();
    let cfg = t.nonet();
    let ud = t.path("user-data.yaml");
    let ud_text = "#cloud-config\n# given by the test\nruncmd:\n  - [touch, /run/from-test]\n";
    std::fs::write(&ud, ud_text).unwrap();
    let (_, pubkey) = client_key(t.env.dir.path(), "id_cloud");
    let keyfile = t.path("id_cloud.pub");
    t.ok(&[
        "create",
        "-n",
        "c1",
        "-t",
        "cloud",
        "-f",
        &cfg,
        "--",
        "--image",
        img.to_str().unwrap(),
        "--userdata",
        ud.to_str().unwrap(),
        "--auth-key",
        keyfile.to_str().unwrap(),
        "--hostid",
        "0123abcd",
    ]);
    let dir = t.container_dir("c1");
    assert_eq!(
        std::fs::read_to_string(dir.join(SEED).join("meta-data")).unwrap(),
        format!(
            "instance-id: lxc-0123abcd\nlocal-hostname: c1\npublic-keys:\n  - \"{}\"\n",
            pubkey.trim()
        )
    );
    assert_eq!(
        std::fs::read(dir.join(SEED).join("user-data")).unwrap(),
        ud_text.as_bytes(),
        "user-data is the --userdata file, verbatim"
    );
    assert!(!dir.join(SEED).join("vendor-data").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("rootfs/etc/hostname")).unwrap(),
        "c1\n"
    );
    let conf = std::fs::read_to_string(dir.join("config")).unwrap();
    assert!(conf.contains("lxc.uts.name = c1\n"), "{conf}");
    assert!(
        conf.contains("lxc.signal.halt = SIGUSR1\n"),
        "busybox init in the image: {conf}"
    );
    let net = conf.find("# Network configuration").expect(&conf);
    assert!(conf[net..].contains("lxc.net.0.type = empty"), "{conf}");

    // it boots: busybox init from the image, the container's hostname
    t.ok(&["start", "-n", "c1", "-d"]);
    assert_eq!(
        t.ok(&["attach", "-n", "c1", "--", "cat", "/proc/1/comm"])
            .trim(),
        "init"
    );
    assert_eq!(t.ok(&["attach", "-n", "c1", "--", "hostname"]).trim(), "c1");
    assert_eq!(
        t.ok(&[
            "attach",
            "-n",
            "c1",
            "--",
            "cat",
            "/var/lib/cloud/seed/nocloud-net/meta-data"
        ])
        .lines()
        .next(),
        Some("instance-id: lxc-0123abcd")
    );
    t.ok(&["stop", "-n", "c1", "-t", "20", "--nokill"]);
    t.ok(&["destroy", "-n", "c1"]);
    assert!(!dir.exists());
}

/// `python3 -c yaml.safe_load` (PyYAML, which cloud-init itself parses user-data with) → JSON.
fn yaml_as_json(p: &Path) -> serde_json::Value {
    let o = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(p)
        .output()
        .expect("python3 with PyYAML (python3-yaml; cargo xtask install-deps installs it)");
    assert!(
        o.status.success(),
        "{} is not valid YAML: {}",
        p.display(),
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn cloud_generated_user_data_is_cloud_config_with_the_keys() {
    let t = T::new();
    let img = t.busybox_tarball();
    let cfg = t.nonet();
    let (_, k1) = client_key(t.env.dir.path(), "id_a");
    let (_, k2) = client_key(t.env.dir.path(), "id_b");
    let keys = t.path("keys");
    std::fs::write(&keys, format!("# two keys\n{k1}\n{k2}")).unwrap();
    t.ok(&cloud(
        "c2",
        &cfg,
        &["-T", img.to_str().unwrap(), "-S", keys.to_str().unwrap()],
    ));
    let seed = t.container_dir("c2").join(SEED);
    let ud = std::fs::read_to_string(seed.join("user-data")).unwrap();
    assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    let v = yaml_as_json(&seed.join("user-data"));
    assert_eq!(
        v["ssh_authorized_keys"],
        serde_json::json!([k1.trim(), k2.trim()]),
        "{ud}"
    );
    assert_eq!(v["manage_etc_hosts"], "localhost");
    assert!(v.get("password").is_none(), "no default password: {ud}");
    let md = yaml_as_json(&seed.join("meta-data"));
    let id = md["instance-id"].as_str().unwrap().to_string();
    let hex = id.strip_prefix("lxc-").expect(&id);
    assert!(
        hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "generated instance id: {id}"
    );
    assert_eq!(md["local-hostname"], "c2");
    assert_eq!(md["public-keys"], serde_json::json!([k1.trim(), k2.trim()]));
    // a second container gets another instance id
    t.ok(&cloud("c3", &cfg, &["-T", img.to_str().unwrap()]));
    let md3 = yaml_as_json(&t.container_dir("c3").join(SEED).join("meta-data"));
    assert_ne!(md3["instance-id"], md["instance-id"]);
    let v3 = yaml_as_json(&t.container_dir("c3").join(SEED).join("user-data"));
    assert!(v3.get("ssh_authorized_keys").is_none());
    // vendor-data is copied verbatim; --cloud writes no seed at all
    let vd = t.path("vendor-data");
    std::fs::write(&vd, "#cloud-config\npackages: [htop]\n").unwrap();
    t.ok(&cloud(
        "c4",
        &cfg,
        &[
            "-T",
            img.to_str().unwrap(),
            "--vendordata",
            vd.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read(t.container_dir("c4").join(SEED).join("vendor-data")).unwrap(),
        std::fs::read(&vd).unwrap()
    );
    t.ok(&cloud(
        "c5",
        &cfg,
        &["-T", img.to_str().unwrap(), "--cloud"],
    ));
    assert!(!t.container_dir("c5").join(SEED).exists());
    assert_eq!(
        std::fs::read_to_string(t.container_dir("c5").join("rootfs/etc/hostname")).unwrap(),
        "c5\n"
    );
    for n in ["c2", "c3", "c4", "c5"] {
        t.ok(&["destroy", "-n", n]);
    }
}

/// The arguments of `lxrs -q create -n NAME -t cloud -f CFG -- ARGS`.
fn cloud<'a>(name: &'a str, cfg: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["-q", "create", "-n", name, "-t", "cloud", "-f", cfg, "--"];
    all.extend_from_slice(args);
    all
}

#[test]
fn cloud_bad_arguments_fail_naming_the_file_and_leave_no_container() {
    let t = T::new();
    let cfg = t.nonet();
    let img = t.busybox_tarball();
    let missing = t.path("no-such-image.tar.xz");
    let e = t.fails(&cloud("b", &cfg, &["--image", missing.to_str().unwrap()]));
    assert!(
        e.contains(missing.to_str().unwrap()) && e.contains("--image"),
        "{e}"
    );
    assert!(!t.container_dir("b").exists());

    let e = t.fails(&cloud("b", &cfg, &[]));
    assert!(e.contains("--image") && e.contains("required"), "{e}");
    assert!(!t.container_dir("b").exists());

    for bad_ud in [t.path("no-such-user-data"), t.env.dir.path().to_path_buf()] {
        let e = t.fails(&cloud(
            "b",
            &cfg,
            &[
                "--image",
                img.to_str().unwrap(),
                "--userdata",
                bad_ud.to_str().unwrap(),
            ],
        ));
        assert!(
            e.contains(bad_ud.to_str().unwrap()) && e.contains("--userdata"),
            "{e}"
        );
        assert!(!t.container_dir("b").exists());
    }

    // not a tarball: fails while unpacking, and the half-made container is removed
    let junk = t.path("junk.tar");
    std::fs::write(&junk, vec![0x5a; 4096]).unwrap();
    let e = t.fails(&cloud("b", &cfg, &["--image", junk.to_str().unwrap()]));
    assert!(e.contains(junk.to_str().unwrap()), "{e}");
    assert!(!t.container_dir("b").exists());

    // a local file with a wrong --sha256
    let e = t.fails(&cloud(
        "b",
        &cfg,
        &[
            "--image",
            img.to_str().unwrap(),
            "--sha256",
            &"0".repeat(64),
        ],
    ));
    assert!(e.contains("SHA-256 mismatch"), "{e}");
    assert!(!t.container_dir("b").exists());
    assert_eq!(
        std::fs::read_dir(&t.env.lxcpath).unwrap().count(),
        0,
        "nothing left in the lxcpath"
    );
}

/// Serve one file at `/images/<name>` on 127.0.0.1; the URL and a count of its downloads.
fn serve(file: &Path) -> (String, std::sync::Arc<std::sync::Mutex<u32>>) {
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let body = std::fs::read(file).unwrap();
    let hits = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let h2 = hits.clone();
    let want = format!("/images/{name}");
    let port = http_server(move |path| {
        if path == want {
            *h2.lock().unwrap() += 1;
            Reply::ok(body.clone())
        } else {
            Reply::not_found()
        }
    });
    (format!("http://127.0.0.1:{port}/images/{name}"), hits)
}

fn sha256_hex(p: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    assert!(o.status.success());
    text(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn cloud_image_url_is_verified_cached_and_boots() {
    let t = T::new();
    let cfg = t.nonet();
    let img = t.busybox_tarball();
    let sha = sha256_hex(&img);
    let (url, hits) = serve(&img);

    // no --sha256: refused before anything is fetched or created
    let e = t.fails(&[
        "create", "-n", "u", "-t", "cloud", "-f", &cfg, "--", "--image", &url,
    ]);
    assert!(e.contains("--sha256") && e.contains(&url), "{e}");
    assert!(!t.container_dir("u").exists());
    assert_eq!(*hits.lock().unwrap(), 0);

    // a wrong hash: downloaded, refused, nothing cached or created
    let wrong = format!("{}0", &sha[..63]);
    let wrong = if wrong == sha { "0".repeat(64) } else { wrong };
    let e = t.fails(&[
        "create", "-n", "u", "-t", "cloud", "-f", &cfg, "--", "--image", &url, "--sha256", &wrong,
    ]);
    assert!(e.contains("SHA-256 mismatch") && e.contains(&url), "{e}");
    assert!(!t.container_dir("u").exists());
    assert!(!t.cache.join("cloud").join(&wrong).exists());

    // the right hash: downloaded once, cached by hash, reused
    t.ok(&cloud(
        "u1",
        &cfg,
        &["--image", &url, "--sha256", &sha, "--hostid", "u1"],
    ));
    let cached = t.cache.join("cloud").join(&sha).join("image.tar.xz");
    assert_eq!(sha256_hex(&cached), sha);
    let n = *hits.lock().unwrap();
    t.ok(&cloud("u2", &cfg, &["--image", &url, "--sha256", &sha]));
    assert_eq!(*hits.lock().unwrap(), n, "the second create uses the cache");
    assert_eq!(
        std::fs::read_to_string(t.container_dir("u1").join(SEED).join("meta-data")).unwrap(),
        "instance-id: lxc-u1\nlocal-hostname: u1\n"
    );
    t.ok(&["start", "-n", "u2", "-d"]);
    assert_eq!(t.ok(&["attach", "-n", "u2", "--", "hostname"]).trim(), "u2");
    t.ok(&["stop", "-n", "u2", "-k"]);
    for n in ["u1", "u2"] {
        t.ok(&["destroy", "-n", n]);
        assert!(!t.container_dir(n).exists());
    }
}

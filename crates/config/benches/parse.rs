//! Parse a generated 1,000-line configuration with includes (typed view, includes followed).

use criterion::{criterion_group, criterion_main, Criterion};
use std::fmt::Write;

fn generate(dir: &std::path::Path) -> std::path::PathBuf {
    // Two included files (one via a directory include) of 200 lines each, 600 lines on top.
    let inc_dir = dir.join("conf.d");
    std::fs::create_dir_all(&inc_dir).unwrap();
    let mut inc = String::new();
    for i in 0..100 {
        writeln!(inc, "# device {i}").unwrap();
        writeln!(inc, "lxc.cgroup2.devices.allow = c {}:{} rwm", i % 255, i).unwrap();
    }
    std::fs::write(dir.join("common.conf"), &inc).unwrap();
    std::fs::write(inc_dir.join("10-extra.conf"), &inc).unwrap();
    let mut top = String::new();
    writeln!(top, "lxc.include = {}", dir.join("common.conf").display()).unwrap();
    writeln!(top, "lxc.include = {}/", inc_dir.display()).unwrap();
    writeln!(
        top,
        "lxc.uts.name = bench\nlxc.rootfs.path = dir:/var/lib/lxrs/bench/rootfs"
    )
    .unwrap();
    let mut n = 4;
    let mut nic = 0;
    while n < 600 {
        match n % 6 {
            0 => writeln!(top, "lxc.net.{nic}.type = veth\nlxc.net.{nic}.link = lxcbr0").unwrap(),
            1 => writeln!(top, "lxc.net.{nic}.ipv4.address = 10.0.{}.{}/24\nlxc.net.{nic}.hwaddr = 00:16:3e:00:{:02x}:{:02x}", nic % 250, n % 250, nic % 256, n % 256).unwrap(),
            2 => writeln!(top, "lxc.mount.entry = /srv/{n} srv/{n} none bind,create=dir 0 0\n# comment {n}").unwrap(),
            3 => writeln!(top, "lxc.prlimit.nofile = {n}:{}\nlxc.sysctl.net.ipv4.conf{n} = 1", n * 2).unwrap(),
            4 => writeln!(top, "lxc.environment = VAR{n}=value{n}\n").unwrap(),
            _ => {
                writeln!(top, "lxc.cap.drop = sys_module mac_admin\nlxc.net.{nic}.flags = up").unwrap();
                nic += 1;
            }
        }
        n += 2;
    }
    let p = dir.join("config");
    std::fs::write(&p, top).unwrap();
    p
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(dir.path());
    let total: usize = ["config", "common.conf", "conf.d/10-extra.conf"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert!(total >= 1000, "generated {total} lines");
    lxrs_config::ContainerConfig::load(&path).expect("generated config is valid");
    c.bench_function("load_1000_lines_with_includes", |b| {
        b.iter(|| lxrs_config::ContainerConfig::load(std::hint::black_box(&path)).unwrap())
    });
    let text = std::fs::read_to_string(&path).unwrap();
    c.bench_function("document_parse_top_level", |b| {
        b.iter(|| lxrs_config::Document::parse(std::hint::black_box(&text), "config"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

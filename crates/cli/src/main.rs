//! `lxrs`: the command-line front end.
//!
//! The C `main` is ours (`no_main`): std's runtime start-up (a read of `/proc/self/maps` for
//! the main thread's stack guard, an alternate signal stack, handlers for stack overflows) cost
//! each command about 0.1 ms of its own. `main` below does the part lxrs relies on.
#![cfg_attr(not(test), no_main)]

mod autostart;
mod cmd_attach;
mod cmd_autostart;
mod cmd_config;
mod cmd_console;
mod cmd_copy;
mod cmd_create;
mod cmd_destroy;
mod cmd_device;
mod cmd_freeze;
mod cmd_info;
mod cmd_ls;
mod cmd_net;
mod cmd_publish;
mod cmd_start;
mod cmd_stop;
mod cmd_templates;
mod globals;
mod inventory;
mod spec_build;
mod table;

use clap::{Parser, Subcommand};
use globals::Globals;

#[derive(Parser, Debug)]
#[command(
    name = "lxrs",
    version,
    about = "lxrs: Linux system containers, LXC-compatible"
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container from a template.
    Create(cmd_create::Args),
    /// Destroy a container and everything it owns.
    Destroy(cmd_destroy::Args),
    /// Start a container (foreground console by default, -d to daemonize).
    Start(cmd_start::Args),
    /// Stop, kill or reboot a container.
    Stop(cmd_stop::Args),
    /// Attach to a container's console or one of its ttys.
    Console(cmd_console::Args),
    /// List containers.
    Ls(cmd_ls::Args),
    /// Show a container's state, pid, addresses and resource use.
    Info(cmd_info::Args),
    /// Run a command (default: a shell) inside a running container.
    Attach(cmd_attach::Args),
    /// Freeze all the container's processes.
    Freeze(cmd_freeze::FreezeArgs),
    /// Thaw a frozen container.
    Unfreeze(cmd_freeze::FreezeArgs),
    /// Add or remove a device node or network interface of a running container.
    Device(cmd_device::Args),
    /// Host network for containers: the lxcbr0 bridge, DHCP (dnsmasq), NAT (nftables).
    Net(cmd_net::Args),
    /// Turn a stopped container into an image in a simplestreams tree (for -t download).
    Publish(cmd_publish::Args),
    /// List the templates lxrs can use and where they come from.
    Templates(cmd_templates::Args),
    /// Copy a stopped container (new name, paths, MACs); -s for an overlay snapshot clone.
    Copy(cmd_copy::Args),
    /// Check, read, edit and upgrade lxc.conf(5) files.
    Config(cmd_config::Args),
    /// Start, reboot, shut down or kill the containers marked lxc.start.auto, in order.
    Autostart(cmd_autostart::Args),
}

/// The process entry point (C `main`), called by the C runtime with std's argument and
/// environment access already set up (glibc hands them to std's `.init_array` hook).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: start-up of a single-threaded process, before anything else runs: stdio
    // descriptors that are closed get /dev/null (nothing lxrs opens may land on them), and a
    // write to a closed pipe returns EPIPE instead of killing the process, as under std's
    // own start-up.
    unsafe {
        for fd in 0..3 {
            if libc::fcntl(fd, libc::F_GETFD) < 0 {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 && null != fd {
                    libc::dup2(null, fd);
                    libc::close(null);
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    lxrs_main()
}

#[cfg_attr(test, allow(dead_code))]
fn lxrs_main() -> ! {
    // The monitor and its helper that deletes host links at stop are this same binary
    // re-executed; they never reach argument parsing. The helper's check comes first: it also
    // tells the monitor that this binary can be re-executed as the helper.
    if let Some(code) = lxrs_runtime::network::run_if_link_deleter() {
        std::process::exit(code);
    }
    if let Some(code) = lxrs_runtime::monitor::run_if_monitor() {
        std::process::exit(code);
    }
    let cli = parse();
    cli.globals.init_logging();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lxrs: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// The command line, parsed with only the named subcommand's arguments built when it comes
/// first and no help or version is asked for: building all fourteen costs each command about
/// 0.3 ms (`perf stat`: `lxrs --version` 0.3 ms more than an exit before parsing). Anything
/// that does not parse that way is parsed again in full, so help, version and error messages
/// are clap's own.
fn parse() -> Cli {
    use clap::{Args, Command, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let asks_help = args.iter().skip(1).any(|a| {
        matches!(
            a.to_str(),
            Some("-h" | "--help" | "-V" | "--version" | "help")
        )
    });
    // The commands run most often (by scripts and `cargo xtask bench`); the rest parse in full.
    let one = |name: &str| -> Option<Command> {
        let c = |n: &'static str| Command::new(n);
        Some(match name {
            "create" => cmd_create::Args::augment_args(c("create")),
            "destroy" => cmd_destroy::Args::augment_args(c("destroy")),
            "start" => cmd_start::Args::augment_args(c("start")),
            "stop" => cmd_stop::Args::augment_args(c("stop")),
            "console" => cmd_console::Args::augment_args(c("console")),
            "ls" => cmd_ls::Args::augment_args(c("ls")),
            "info" => cmd_info::Args::augment_args(c("info")),
            "attach" => cmd_attach::Args::augment_args(c("attach")),
            "freeze" => cmd_freeze::FreezeArgs::augment_args(c("freeze")),
            "unfreeze" => cmd_freeze::FreezeArgs::augment_args(c("unfreeze")),
            _ => return None,
        })
    };
    let sub = subcommand_name(&args).and_then(one);
    if let (false, Some(sub)) = (asks_help, sub) {
        let root = Globals::augment_args(Command::new("lxrs").subcommand(sub));
        if let Ok(cli) = root
            .try_get_matches_from(&args)
            .map_err(|_| ())
            .and_then(|m| Cli::from_arg_matches(&m).map_err(|_| ()))
        {
            return cli;
        }
    }
    Cli::parse()
}

/// [`Globals`]' options that take a value as the next word (a test keeps this in step).
const GLOBAL_OPTIONS_WITH_VALUE: &[&str] =
    &["-P", "--lxcpath", "-o", "--logfile", "-l", "--logpriority"];

/// The subcommand's name as the first word of `args` (after the program name) that is
/// neither an option nor the value of a global option that takes one (`-P DIR start`). Only a
/// guess at which subcommand to build: clap still parses every argument, and a wrong guess
/// fails there and falls back to the full parse.
fn subcommand_name(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    while let Some(w) = words.next() {
        match w? {
            o if GLOBAL_OPTIONS_WITH_VALUE.contains(&o) => {
                words.next();
            }
            "--" => return None,
            o if o.starts_with('-') => {}
            name => return Some(name),
        }
    }
    None
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.globals;
    match cli.cmd {
        Cmd::Create(a) => cmd_create::run(a, g),
        Cmd::Destroy(a) => cmd_destroy::run(a, g),
        Cmd::Start(a) => cmd_start::run(a, g),
        Cmd::Stop(a) => cmd_stop::run(a, g),
        Cmd::Console(a) => cmd_console::run(a, g),
        Cmd::Ls(a) => cmd_ls::run(a, g),
        Cmd::Info(a) => cmd_info::run(a, g),
        Cmd::Config(a) => cmd_config::run(a, g),
        Cmd::Attach(a) => cmd_attach::run(a, g),
        Cmd::Freeze(a) => cmd_freeze::run_freeze(a, g),
        Cmd::Unfreeze(a) => cmd_freeze::run_unfreeze(a, g),
        Cmd::Device(a) => cmd_device::run(a, g),
        Cmd::Net(a) => cmd_net::run(a, g),
        Cmd::Publish(a) => cmd_publish::run(a, g),
        Cmd::Templates(a) => cmd_templates::run(a, g),
        Cmd::Copy(a) => cmd_copy::run(a, g),
        Cmd::Autostart(a) => cmd_autostart::run(a, g),
    }
}

#[cfg(test)]
mod tests {
    use super::subcommand_name;
    use std::ffi::OsString;

    fn args(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn every_global_option_that_takes_a_value_is_known_to_the_fast_parse() {
        use clap::Args;
        let root = crate::Globals::augment_args(clap::Command::new("lxrs"));
        let mut want: Vec<String> = root
            .get_arguments()
            .filter(|a| a.get_action().takes_values())
            .flat_map(|a| {
                let short = a.get_short().map(|c| format!("-{c}"));
                let long = a.get_long().map(|l| format!("--{l}"));
                short.into_iter().chain(long)
            })
            .collect();
        let mut have: Vec<String> = super::GLOBAL_OPTIONS_WITH_VALUE
            .iter()
            .map(|s| s.to_string())
            .collect();
        want.sort();
        have.sort();
        assert_eq!(have, want);
    }

    #[test]
    fn the_subcommand_after_global_options_and_their_values() {
        assert_eq!(subcommand_name(&args("lxrs start -n c")), Some("start"));
        assert_eq!(
            subcommand_name(&args("lxrs -P /x start -n c")),
            Some("start")
        );
        assert_eq!(
            subcommand_name(&args("lxrs -q --lxcpath /x -l DEBUG -o f ls")),
            Some("ls")
        );
        assert_eq!(
            subcommand_name(&args("lxrs -P/x --lxcpath=/y stop")),
            Some("stop")
        );
        assert_eq!(subcommand_name(&args("lxrs -P")), None);
        assert_eq!(subcommand_name(&args("lxrs -- start")), None);
        assert_eq!(subcommand_name(&args("lxrs")), None);
    }
}

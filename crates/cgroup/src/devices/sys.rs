//! The `bpf(2)` calls for device programs, with our own `repr(C)` slices of `union bpf_attr`.

use std::ffi::c_long;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::bpf::BpfInsn;
use crate::error::{Error, Result};

const BPF_PROG_LOAD: c_long = 5;
const BPF_PROG_ATTACH: c_long = 8;
const BPF_PROG_DETACH: c_long = 9;
const BPF_PROG_GET_FD_BY_ID: c_long = 13;
const BPF_PROG_QUERY: c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
const BPF_F_REPLACE: u32 = 1 << 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)`.
///
/// # Safety
/// `attr` must be the attribute struct the kernel expects for `cmd`, and every pointer stored
/// in it must be valid for the access the kernel makes during the call.
unsafe fn bpf<T>(cmd: c_long, attr: &mut T) -> io::Result<c_long> {
    // SAFETY: the caller guarantees `attr` matches `cmd` and that its pointers are valid; the
    // size passed is exactly the size of `*attr`, which the kernel reads (and may write) only
    // within that size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn load_once(insns: &[BpfInsn], log: Option<&mut Vec<u8>>) -> io::Result<OwnedFd> {
    let license = b"GPL\0";
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"lxrs_devcg");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is a BPF_PROG_LOAD attribute; `insns`, `license` and the optional log
    // buffer (with its exact length) outlive the call.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: on success BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Load a device program; on failure retry with the verifier log and put it in the error.
pub(crate) fn load(insns: &[BpfInsn], cgroup: &Path) -> Result<OwnedFd> {
    match load_once(insns, None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut buf = vec![0u8; 256 * 1024];
            let source = match load_once(insns, Some(&mut buf)) {
                Ok(fd) => return Ok(fd),
                Err(e) => e,
            };
            let _ = first;
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Err(Error::BpfLoad {
                path: cgroup.to_path_buf(),
                insns: insns.len(),
                source,
                log: String::from_utf8_lossy(&buf[..end]).trim().to_string(),
            })
        }
    }
}

/// Attach `prog` to the cgroup directory `cgroup_fd` (multi-attach), atomically replacing
/// `replace` when given.
pub(crate) fn attach(
    cgroup_fd: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    replace: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    if let Some(old) = replace {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = old.as_raw_fd() as u32;
    }
    // SAFETY: `attr` is a BPF_PROG_ATTACH attribute holding only fds, no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(|_| ())
}

pub(crate) fn detach(cgroup_fd: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is a BPF_PROG_DETACH attribute holding only fds, no pointers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(|_| ())
}

/// Ids of the device programs attached directly to the cgroup.
pub(crate) fn query(cgroup_fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: `attr` is a BPF_PROG_QUERY attribute; `prog_ids` points to `prog_cnt` writable
    // u32s that outlive the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr)? };
    ids.truncate((attr.prog_cnt as usize).min(64));
    Ok(ids)
}

pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: `attr` is a BPF_PROG_GET_FD_BY_ID attribute without pointers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: on success the call returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

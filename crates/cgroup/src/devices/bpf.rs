//! Compile a [`DeviceRules`] list into a `BPF_PROG_TYPE_CGROUP_DEVICE` program: a pure
//! function, unit-tested by interpreting the program.
//!
//! The program's context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! with `access_type = (access << 16) | type` (type: block 1, char 2; access: mknod 1, read 2,
//! write 4). It returns 1 to allow, 0 to deny.

use super::{DeviceRules, DeviceType};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl BpfInsn {
    pub fn dst(&self) -> usize {
        (self.regs & 0x0f) as usize
    }
    pub fn src(&self) -> usize {
        (self.regs >> 4) as usize
    }
}

/// Opcode parts (`linux/bpf_common.h`, `linux/bpf.h`).
pub mod op {
    pub const LDX: u8 = 0x01;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;
    pub const W: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;
    pub const AND: u8 = 0x50;
    pub const RSH: u8 = 0x70;
    pub const MOV: u8 = 0xb0;
    pub const JA: u8 = 0x00;
    pub const JNE: u8 = 0x50;
    pub const EXIT: u8 = 0x90;
}

pub const BPF_DEVCG_DEV_BLOCK: u32 = 1;
pub const BPF_DEVCG_DEV_CHAR: u32 = 2;

// Registers used by the program.
const R0: u8 = 0;
const R1: u8 = 1; // context on entry, scratch after the loads
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn ldx_w(dst: u8, src: u8, off: i16) -> BpfInsn {
    insn(op::LDX | op::MEM | op::W, dst, src, off, 0)
}
fn alu32_imm(operation: u8, dst: u8, imm: i32) -> BpfInsn {
    insn(op::ALU | operation | op::K, dst, 0, 0, imm)
}
fn mov32_reg(dst: u8, src: u8) -> BpfInsn {
    insn(op::ALU | op::MOV | op::X, dst, src, 0, 0)
}
fn mov64_imm(dst: u8, imm: i32) -> BpfInsn {
    insn(op::ALU64 | op::MOV | op::K, dst, 0, 0, imm)
}
fn jne32_imm(dst: u8, imm: u32, off: i16) -> BpfInsn {
    insn(op::JMP32 | op::JNE | op::K, dst, 0, off, imm as i32)
}
fn jne32_reg(dst: u8, src: u8, off: i16) -> BpfInsn {
    insn(op::JMP32 | op::JNE | op::X, dst, src, off, 0)
}
fn exit() -> BpfInsn {
    insn(op::JMP | op::EXIT, 0, 0, 0, 0)
}

/// Compile the effective rules of `rules` into a device program.
///
/// Layout: load type, access, major and minor into r2..r5; then one block per effective rule
/// whose conditions jump past the block when they do not hold, and whose body returns the
/// rule's verdict; finally return the default verdict.
pub fn compile(rules: &DeviceRules) -> Vec<BpfInsn> {
    let mut prog = vec![
        ldx_w(R_TYPE, R1, 0),
        alu32_imm(op::AND, R_TYPE, 0xffff),
        ldx_w(R_ACCESS, R1, 0),
        alu32_imm(op::RSH, R_ACCESS, 16),
        ldx_w(R_MAJOR, R1, 4),
        ldx_w(R_MINOR, R1, 8),
    ];
    for rule in rules.effective() {
        // Conditions, each "jump to the end of the block if not", offsets patched below.
        let mut block: Vec<BpfInsn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        match rule.kind {
            DeviceType::All => {}
            DeviceType::Char => {
                jumps.push(block.len());
                block.push(jne32_imm(R_TYPE, BPF_DEVCG_DEV_CHAR, 0));
            }
            DeviceType::Block => {
                jumps.push(block.len());
                block.push(jne32_imm(R_TYPE, BPF_DEVCG_DEV_BLOCK, 0));
            }
        }
        if rule.access != super::Access::ALL {
            // requested & allowed == requested
            block.push(mov32_reg(R1, R_ACCESS));
            block.push(alu32_imm(op::AND, R1, rule.access.0 as i32));
            jumps.push(block.len());
            block.push(jne32_reg(R1, R_ACCESS, 0));
        }
        if let Some(major) = rule.major {
            jumps.push(block.len());
            block.push(jne32_imm(R_MAJOR, major, 0));
        }
        if let Some(minor) = rule.minor {
            jumps.push(block.len());
            block.push(jne32_imm(R_MINOR, minor, 0));
        }
        block.push(mov64_imm(R0, rule.allow as i32));
        block.push(exit());
        let len = block.len();
        for j in jumps {
            // target = the instruction after this block; offset counts from j + 1
            block[j].off = (len - j - 1) as i16;
        }
        prog.extend(block);
    }
    prog.push(mov64_imm(R0, rules.default_allow() as i32));
    prog.push(exit());
    prog
}

#[cfg(test)]
pub(crate) mod interp {
    //! A small eBPF interpreter for the instruction subset a device program may use, checking
    //! what the kernel verifier would: known opcodes, initialised registers, in-bounds context
    //! reads, forward jumps inside the program, r0 set at exit.
    use super::*;

    const CTX: u64 = 0xc7c7_0000_0000;

    pub fn run(prog: &[BpfInsn], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut reg = [0u64; 11];
        let mut init = [false; 11];
        reg[1] = CTX;
        init[1] = true;
        init[10] = true;
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps <= prog.len(), "program does not terminate");
            let i = *prog
                .get(pc)
                .unwrap_or_else(|| panic!("pc {pc} falls off the program"));
            let (d, s) = (i.dst(), i.src());
            assert!(d <= 10 && s <= 10, "bad register in {i:?}");
            let class = i.code & 0x07;
            let at = pc;
            let src_val = |reg: &[u64; 11], init: &[bool; 11]| -> u64 {
                if i.code & op::X != 0 {
                    assert!(init[s], "read of uninitialised r{s} at {at}");
                    reg[s]
                } else {
                    i.imm as i64 as u64
                }
            };
            pc += 1;
            match class {
                op::LDX => {
                    assert_eq!(i.code, op::LDX | op::MEM | op::W, "unsupported load {i:?}");
                    assert!(
                        init[s] && reg[s] == CTX,
                        "load through a non-context pointer at {}",
                        pc - 1
                    );
                    let off = i.off as i64;
                    assert!(
                        off >= 0 && off % 4 == 0 && off < 12,
                        "context read at offset {off}"
                    );
                    assert_ne!(d, 10, "write to r10");
                    reg[d] = ctx[(off / 4) as usize] as u64;
                    init[d] = true;
                }
                op::ALU | op::ALU64 => {
                    assert_ne!(d, 10, "write to r10");
                    let operation = i.code & 0xf0;
                    let v = src_val(&reg, &init);
                    if operation != op::MOV {
                        assert!(init[d], "read of uninitialised r{d} at {}", pc - 1);
                    }
                    let r = match operation {
                        op::MOV => v,
                        op::AND => reg[d] & v,
                        op::RSH => {
                            assert!(v < if class == op::ALU { 32 } else { 64 }, "shift by {v}");
                            if class == op::ALU {
                                ((reg[d] as u32) >> v) as u64
                            } else {
                                reg[d] >> v
                            }
                        }
                        _ => panic!("unsupported ALU op {i:?}"),
                    };
                    reg[d] = if class == op::ALU { r as u32 as u64 } else { r };
                    init[d] = true;
                }
                op::JMP | op::JMP32 => {
                    let operation = i.code & 0xf0;
                    if operation == op::EXIT {
                        assert_eq!(class, op::JMP);
                        assert!(init[0], "exit with uninitialised r0");
                        return reg[0];
                    }
                    let taken = match operation {
                        op::JA => true,
                        op::JNE => {
                            assert!(init[d], "read of uninitialised r{d} at {}", pc - 1);
                            let v = src_val(&reg, &init);
                            if class == op::JMP32 {
                                reg[d] as u32 != v as u32
                            } else {
                                reg[d] != v
                            }
                        }
                        _ => panic!("unsupported jump {i:?}"),
                    };
                    assert!(i.off >= 0, "backward jump at {}", pc - 1);
                    if taken {
                        pc += i.off as usize;
                        assert!(pc < prog.len(), "jump out of the program");
                    }
                }
                _ => panic!("unsupported instruction class {i:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{Access, DeviceRule};

    fn ask(prog: &[BpfInsn], kind: DeviceType, major: u32, minor: u32, access: Access) -> bool {
        let t = match kind {
            DeviceType::Block => BPF_DEVCG_DEV_BLOCK,
            DeviceType::Char => BPF_DEVCG_DEV_CHAR,
            DeviceType::All => unreachable!(),
        };
        match interp::run(prog, ((access.0 as u32) << 16) | t, major, minor) {
            0 => false,
            1 => true,
            r => panic!("program returned {r}"),
        }
    }

    /// Every single-bit access on a grid of devices: the program answers as the list says.
    fn check_against_reference(rules: &DeviceRules) {
        let prog = compile(rules);
        for kind in [DeviceType::Char, DeviceType::Block] {
            for major in [0, 1, 4, 5, 8, 10, 136, 240, 4095, u32::MAX] {
                for minor in [0, 1, 3, 5, 7, 9, 200, 229, 1048575, u32::MAX] {
                    for access in [Access::MKNOD, Access::READ, Access::WRITE] {
                        assert_eq!(
                            ask(&prog, kind, major, minor, access),
                            rules.allows(kind, major, minor, access),
                            "{kind:?} {major}:{minor} {access} with {rules:?}"
                        );
                    }
                }
            }
        }
    }

    fn rules(list: &[(bool, &str)]) -> DeviceRules {
        let mut r = DeviceRules::deny_all();
        for (allow, t) in list {
            r.add_text(*allow, t).unwrap();
        }
        r
    }

    #[test]
    fn empty_list_denies_everything() {
        let r = DeviceRules::deny_all();
        let p = compile(&r);
        assert!(!ask(&p, DeviceType::Char, 1, 3, Access::READ));
        assert!(!ask(&p, DeviceType::Block, 8, 0, Access::MKNOD));
        check_against_reference(&r);
    }

    #[test]
    fn lxc_default_allow_list() {
        let r = DeviceRules::lxc_default();
        let p = compile(&r);
        for (maj, min) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (5, 0),
            (5, 1),
            (5, 2),
            (1, 8),
            (1, 9),
            (10, 229),
        ] {
            for a in [Access::READ, Access::WRITE, Access::MKNOD] {
                assert!(ask(&p, DeviceType::Char, maj, min, a), "c {maj}:{min} {a}");
            }
        }
        // pts: any minor
        assert!(ask(&p, DeviceType::Char, 136, 0, Access::WRITE));
        assert!(ask(&p, DeviceType::Char, 136, 77, Access::READ));
        // mknod of anything, but no read/write
        assert!(ask(&p, DeviceType::Char, 10, 200, Access::MKNOD));
        assert!(ask(&p, DeviceType::Block, 8, 0, Access::MKNOD));
        assert!(!ask(&p, DeviceType::Char, 10, 200, Access::READ));
        assert!(!ask(&p, DeviceType::Char, 240, 0, Access::WRITE));
        assert!(
            !ask(&p, DeviceType::Block, 1, 3, Access::READ),
            "block 1:3 is not char 1:3"
        );
        assert!(!ask(&p, DeviceType::Char, 1, 4, Access::READ));
        check_against_reference(&r);
    }

    #[test]
    fn deny_list_after_allow_a() {
        let r = rules(&[(true, "a"), (false, "c 10:200 rwm"), (false, "b 8:* w")]);
        let p = compile(&r);
        assert!(ask(&p, DeviceType::Char, 1, 3, Access::READ));
        assert!(!ask(&p, DeviceType::Char, 10, 200, Access::READ));
        assert!(ask(&p, DeviceType::Char, 10, 201, Access::READ));
        assert!(!ask(&p, DeviceType::Block, 8, 3, Access::WRITE));
        assert!(ask(&p, DeviceType::Block, 8, 3, Access::READ));
        assert!(ask(&p, DeviceType::Char, 8, 3, Access::WRITE));
        check_against_reference(&r);
    }

    #[test]
    fn wildcards() {
        let r = rules(&[(true, "c *:7 r"), (true, "b 8:* rw"), (true, "c *:* m")]);
        let p = compile(&r);
        assert!(ask(&p, DeviceType::Char, 99, 7, Access::READ));
        assert!(!ask(&p, DeviceType::Char, 99, 7, Access::WRITE));
        assert!(ask(&p, DeviceType::Block, 8, 12345, Access::WRITE));
        assert!(!ask(&p, DeviceType::Block, 8, 12345, Access::MKNOD));
        assert!(ask(&p, DeviceType::Char, 3, 3, Access::MKNOD));
        check_against_reference(&r);
    }

    #[test]
    fn a_resets_the_list() {
        let r = rules(&[
            (true, "c 1:3 rwm"),
            (true, "a"),
            (false, "a"),
            (true, "c 1:5 rwm"),
        ]);
        let p = compile(&r);
        assert!(!ask(&p, DeviceType::Char, 1, 3, Access::READ));
        assert!(ask(&p, DeviceType::Char, 1, 5, Access::READ));
        check_against_reference(&r);
        let r = rules(&[(false, "c 1:3 rwm"), (true, "a")]);
        assert!(ask(&compile(&r), DeviceType::Char, 1, 3, Access::READ));
        assert_eq!(
            compile(&r).len(),
            8,
            "allow-all is the load prologue plus `return 1`"
        );
    }

    #[test]
    fn identical_rules_flip() {
        let mut r = DeviceRules::lxc_default();
        r.add_text(false, "c 1:3 rwm").unwrap();
        assert!(!ask(&compile(&r), DeviceType::Char, 1, 3, Access::READ));
        r.add_text(true, "c 1:3 rwm").unwrap();
        assert!(ask(&compile(&r), DeviceType::Char, 1, 3, Access::READ));
        // runtime `device add` then `device del` of a node
        r.add(DeviceRule::node(true, DeviceType::Char, 10, 200));
        assert!(ask(&compile(&r), DeviceType::Char, 10, 200, Access::WRITE));
        r.add(DeviceRule::node(false, DeviceType::Char, 10, 200));
        assert!(!ask(&compile(&r), DeviceType::Char, 10, 200, Access::WRITE));
        check_against_reference(&r);
        // not identical (different access): added, and a deny in an allow list is ignored
        r.add_text(false, "c 1:9 r").unwrap();
        assert!(ask(&compile(&r), DeviceType::Char, 1, 9, Access::READ));
        check_against_reference(&r);
    }

    #[test]
    fn block_vs_char_and_access_masks() {
        let r = rules(&[(true, "b 7:0 r"), (true, "c 7:0 w"), (true, "a *:* rwm")]);
        // `a *:* rwm` is a bare `a`: allow everything
        assert!(ask(&compile(&r), DeviceType::Block, 7, 0, Access::WRITE));
        let r = rules(&[(true, "b 7:0 r"), (true, "c 7:0 w")]);
        let p = compile(&r);
        assert!(ask(&p, DeviceType::Block, 7, 0, Access::READ));
        assert!(!ask(&p, DeviceType::Block, 7, 0, Access::WRITE));
        assert!(ask(&p, DeviceType::Char, 7, 0, Access::WRITE));
        assert!(!ask(&p, DeviceType::Char, 7, 0, Access::READ));
        assert!(!ask(&p, DeviceType::Char, 7, 0, Access::MKNOD));
        // a (hypothetical) combined request must be covered entirely
        let both = interp::run(&p, (6 << 16) | BPF_DEVCG_DEV_BLOCK, 7, 0);
        assert_eq!(both, 0);
        check_against_reference(&r);
    }

    #[test]
    fn program_shape() {
        let r = rules(&[(true, "c 1:3 rwm")]);
        let p = compile(&r);
        // prologue 6, block: type, major, minor, mov, exit = 5, epilogue 2
        assert_eq!(p.len(), 13);
        assert_eq!(p.last().unwrap().code, op::JMP | op::EXIT);
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
    }
}

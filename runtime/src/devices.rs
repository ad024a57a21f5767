//! Devices: the nodes a container gets in its `/dev` (OCI `linux.devices`) and the device
//! cgroup allow-list (OCI `linux.resources.devices`).
//!
//! The allow-list is enforced by cgroup v1's `devices.deny`/`devices.allow` files, or on
//! cgroup v2 by a `BPF_PROG_TYPE_CGROUP_DEVICE` program assembled here instruction by
//! instruction (no libbpf, no compiler), loaded with `bpf(BPF_PROG_LOAD)` and attached to
//! the container's cgroup with `bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE,
//! BPF_F_ALLOW_MULTI)`, as crun does. The attachment lives as long as the cgroup.
//!
//! Rules keep v1's meaning on both versions: a rule of type `a` with no major and minor
//! ("all devices") resets the list to "allow all" or "deny all"; after it, the *last*
//! matching rule decides. The default list ([`default_rules`]) is runc's: deny all, then
//! allow null, zero, full, random, urandom, tty, console, ptmx and the pts devices
//! (`c 136:*`) for read, write and mknod. Every device the config lists in
//! `linux.devices` is allowed too (rwm), as runc does.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Errors of the device code.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "device rule {0:?}: expected type a, c or b, access made of r, w, m and \
         non-negative major/minor numbers"
    )]
    BadRule(String),
    #[error("device {path:?}: {why}")]
    BadDevice { path: String, why: String },
    #[error(
        "loading the device cgroup eBPF program into the kernel: {source} (verifier log: \
         {log}); the kernel needs CONFIG_CGROUP_BPF and the caller CAP_SYS_ADMIN"
    )]
    Load { source: nix::Error, log: String },
    #[error("opening cgroup {path} to attach the device program: {source}")]
    OpenCgroup {
        path: std::path::PathBuf,
        source: nix::Error,
    },
    #[error("attaching the device program to cgroup {path}: {source}")]
    Attach {
        path: std::path::PathBuf,
        source: nix::Error,
    },
}

/// A device node made in the container (OCI `linux.devices` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Absolute container path under `/dev`, e.g. `/dev/fuse`.
    pub path: String,
    /// `c` (or `u`) character, `b` block, `p` FIFO.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits; default 0666.
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// One device cgroup rule (OCI `linux.resources.devices` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` all, `c` character, `b` block.
    pub kind: char,
    /// None = any (`*`).
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of `r` `w` `m`; empty = `rwm`.
    pub access: String,
}

impl DeviceRule {
    /// An allow rule for a character device, read/write/mknod.
    pub fn allow_char(major: i64, minor: Option<i64>) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(major),
            minor,
            access: "rwm".into(),
        }
    }

    fn resets(&self) -> bool {
        self.kind == 'a' && self.major.is_none() && self.minor.is_none()
    }

    /// The v1 line: `c 1:3 rwm`, `a *:* rwm`, `a` for a reset.
    pub fn v1_line(&self) -> String {
        if self.resets() {
            return "a".into();
        }
        let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        let access = if self.access.is_empty() {
            "rwm"
        } else {
            &self.access
        };
        format!(
            "{} {}:{} {access}",
            self.kind,
            num(self.major),
            num(self.minor)
        )
    }

    fn check(&self) -> Result<(), DeviceError> {
        let bad_num = |n: Option<i64>| n.is_some_and(|n| !(0..=u32::MAX as i64).contains(&n));
        if !matches!(self.kind, 'a' | 'c' | 'b')
            || !self.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
            || bad_num(self.major)
            || bad_num(self.minor)
        {
            return Err(DeviceError::BadRule(format!("{self:?}")));
        }
        Ok(())
    }

    /// `BPF_DEVCG_ACC_*` bits of the access string.
    fn access_bits(&self) -> i32 {
        if self.access.is_empty() {
            return ACC_ALL;
        }
        self.access.chars().fold(0, |b, c| {
            b | match c {
                'm' => ACC_MKNOD,
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => 0,
            }
        })
    }
}

/// (major, minor) of the devices every container may use: runc's default allow-list.
pub const DEFAULT_ALLOWED: [(i64, Option<i64>); 9] = [
    (1, Some(3)), // null
    (1, Some(5)), // zero
    (1, Some(7)), // full
    (1, Some(8)), // random
    (1, Some(9)), // urandom
    (5, Some(0)), // tty
    (5, Some(1)), // console
    (5, Some(2)), // ptmx
    (136, None),  // pts/*
];

/// runc's default: deny everything, then allow [`DEFAULT_ALLOWED`] (rwm).
pub fn default_rules() -> Vec<DeviceRule> {
    let mut rules = vec![DeviceRule {
        allow: false,
        kind: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    }];
    rules.extend(
        DEFAULT_ALLOWED
            .iter()
            .map(|&(ma, mi)| DeviceRule::allow_char(ma, mi)),
    );
    rules
}

/// The rules in effect: `rules` (deny all if it does not start with a reset), then the
/// default allow-list when `with_defaults`, then every listed device (rwm). Returns the
/// default verdict (allow?) and the rules after the last reset.
pub fn effective(
    rules: &[DeviceRule],
    devices: &[Device],
) -> Result<(bool, Vec<DeviceRule>), DeviceError> {
    let mut all: Vec<DeviceRule> = rules.to_vec();
    for d in devices {
        if d.kind == 'p' {
            continue;
        }
        all.push(DeviceRule {
            allow: true,
            kind: if d.kind == 'b' { 'b' } else { 'c' },
            major: Some(d.major),
            minor: Some(d.minor),
            access: "rwm".into(),
        });
    }
    let mut default_allow = false;
    let mut out = Vec::new();
    for r in all {
        r.check()?;
        if r.resets() {
            default_allow = r.allow;
            out.clear();
        } else {
            out.push(r);
        }
    }
    Ok((default_allow, out))
}

/// The lines to write, in order, to v1 `devices.deny` (false) / `devices.allow` (true).
pub fn v1_writes(default_allow: bool, rules: &[DeviceRule]) -> Vec<(bool, String)> {
    let mut out = vec![(default_allow, "a".to_string())];
    out.extend(rules.iter().map(|r| (r.allow, r.v1_line())));
    out
}

// --- cgroup v2: the eBPF program -------------------------------------------------------

const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const MOV64_K: u8 = 0xb7;
const MOV64_X: u8 = 0xbf;
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program for a default verdict and rules (from [`effective`]). Registers: r2 =
/// device type, r3 = access, r4 = major, r5 = minor (from `struct bpf_cgroup_dev_ctx
/// { u32 access_type; u32 major; u32 minor; }`, `access_type = access << 16 | type`).
/// The rules are emitted last first, so the first match in the program is the last
/// matching rule of the list; nothing matching returns the default.
pub fn program(default_allow: bool, rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Each check jumps over the rest of the block when it does not match; the
        // offsets are patched once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        match r.kind {
            'c' => block.push(insn(JNE_K, 2, 0, 0, DEV_CHAR)),
            'b' => block.push(insn(JNE_K, 2, 0, 0, DEV_BLOCK)),
            _ => {}
        }
        let acc = r.access_bits();
        if acc != ACC_ALL {
            block.push(insn(MOV64_X, 1, 3, 0, 0));
            block.push(insn(ALU64_AND_K, 1, 0, 0, !acc));
            block.push(insn(JNE_K, 1, 0, 0, 0));
        }
        if let Some(major) = r.major {
            block.push(insn(JNE_K, 4, 0, 0, major as u32 as i32));
        }
        if let Some(minor) = r.minor {
            block.push(insn(JNE_K, 5, 0, 0, minor as u32 as i32));
        }
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let n = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K {
                ins.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV64_K, 0, 0, 0, i32::from(default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The first fields of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
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
}

/// The fields of `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// Loads `prog` as a cgroup device program; returns its descriptor.
pub fn load(prog: &[Insn]) -> Result<OwnedFd, DeviceError> {
    let license = c"GPL";
    let mut log = vec![0u8; 16 * 1024];
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
    };
    // SAFETY: bpf(2) reads `attr` (size given) and the buffers it points to, which all
    // outlive the call; it writes at most log_size bytes into `log`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &raw const attr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if ret < 0 {
        let source = nix::Error::last();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        return Err(DeviceError::Load {
            source,
            log: String::from_utf8_lossy(&log[..end]).trim().to_owned(),
        });
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Loads the program for `rules` and attaches it to the cgroup v2 directory `cgroup`
/// (with `BPF_F_ALLOW_MULTI`: programs of the ancestors still run too).
pub fn attach(cgroup: &Path, default_allow: bool, rules: &[DeviceRule]) -> Result<(), DeviceError> {
    let prog = load(&program(default_allow, rules))?;
    let dir = nix::fcntl::open(
        cgroup,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|source| DeviceError::OpenCgroup {
        path: cgroup.to_owned(),
        source,
    })?;
    let attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: bpf(2) reads `attr`; both descriptors are open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &raw const attr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if ret < 0 {
        return Err(DeviceError::Attach {
            path: cgroup.to_owned(),
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Checks a listed device and returns its container path relative to `/dev`
/// (e.g. `fuse`, `net/tun`).
pub fn dev_relative(d: &Device) -> Result<String, DeviceError> {
    let bad = |why: &str| DeviceError::BadDevice {
        path: d.path.clone(),
        why: why.into(),
    };
    let norm = crate::spec::normalize(&d.path);
    let rel = norm
        .strip_prefix("/dev/")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("the path must be under /dev"))?;
    if !matches!(d.kind, 'c' | 'u' | 'b' | 'p') {
        return Err(bad("type must be c, u, b or p"));
    }
    if d.kind != 'p' && (d.major < 0 || d.minor < 0) {
        return Err(bad("major and minor must be non-negative"));
    }
    Ok(rel.to_owned())
}

impl From<DeviceError> for crate::Error {
    fn from(e: DeviceError) -> crate::Error {
        match e {
            DeviceError::BadRule(_) | DeviceError::BadDevice { .. } => {
                crate::Error::InvalidSpec(e.to_string())
            }
            DeviceError::Load { source, .. }
            | DeviceError::OpenCgroup { source, .. }
            | DeviceError::Attach { source, .. } => crate::Error::Sys {
                what: e.to_string(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one access, as the kernel would (a tiny interpreter of the
    /// instructions [`program`] emits), so the assembly is checked without root.
    fn run(prog: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> bool {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                MOV64_K => r[dst] = i.imm as i64 as u64,
                MOV64_X => r[dst] = r[src],
                JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn default_program_allows_only_the_default_devices() {
        let (allow, rules) = effective(&default_rules(), &[]).unwrap();
        assert!(!allow);
        let p = program(allow, &rules);
        assert!(run(&p, DEV_CHAR, ACC_READ, 1, 3), "null");
        assert!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 9), "mknod urandom");
        assert!(run(&p, DEV_CHAR, ACC_WRITE, 136, 7), "pts/7");
        assert!(run(&p, DEV_CHAR, ACC_READ, 5, 2), "ptmx");
        assert!(!run(&p, DEV_CHAR, ACC_READ, 1, 1), "mem");
        assert!(!run(&p, DEV_BLOCK, ACC_READ, 1, 3), "block 1:3 is not null");
        assert!(!run(&p, DEV_CHAR, ACC_MKNOD, 10, 237), "loop-control");
        assert_eq!(p.last().unwrap().code, EXIT);
    }

    #[test]
    fn last_matching_rule_wins_and_access_is_checked() {
        let rules = vec![
            DeviceRule {
                allow: true,
                kind: 'a',
                major: None,
                minor: None,
                access: "rwm".into(),
            },
            DeviceRule {
                allow: false,
                kind: 'c',
                major: Some(10),
                minor: None,
                access: "w".into(),
            },
        ];
        let dev = Device {
            path: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            file_mode: None,
            uid: None,
            gid: None,
        };
        let (allow, eff) = effective(&rules, &[dev]).unwrap();
        assert!(allow);
        let p = program(allow, &eff);
        assert!(run(&p, DEV_CHAR, ACC_READ, 10, 200), "read of 10:* allowed");
        assert!(
            !run(&p, DEV_CHAR, ACC_WRITE, 10, 200),
            "write of 10:* denied"
        );
        assert!(
            run(&p, DEV_CHAR, ACC_WRITE, 10, 229),
            "fuse listed later: allowed"
        );
        assert!(run(&p, DEV_BLOCK, ACC_WRITE, 8, 0), "default allow");
        assert_eq!(
            v1_writes(allow, &eff),
            vec![
                (true, "a".to_string()),
                (false, "c 10:* w".to_string()),
                (true, "c 10:229 rwm".to_string())
            ]
        );
    }

    #[test]
    fn bad_rules_and_devices_are_refused() {
        let bad = DeviceRule {
            allow: true,
            kind: 'x',
            major: None,
            minor: None,
            access: "r".into(),
        };
        assert!(effective(&[bad], &[]).is_err());
        let d = Device {
            path: "/etc/x".into(),
            kind: 'c',
            major: 1,
            minor: 1,
            file_mode: None,
            uid: None,
            gid: None,
        };
        assert!(dev_relative(&d).is_err());
        let d = Device {
            path: "/dev/net/tun".into(),
            ..d
        };
        assert_eq!(dev_relative(&d).unwrap(), "net/tun");
    }

    #[test]
    fn instructions_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let i = insn(LDX_MEM_W, 4, 1, 4, 0);
        assert_eq!(i.regs, 0x14);
    }
}

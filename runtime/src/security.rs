//! The security defaults of every container, as Docker and runc set them: the capability
//! set, masked and read-only `/proc` and `/sys` paths, resource limits, and a seccomp
//! filter built from moby's default profile (`profiles/seccomp/default.json`).
//!
//! Everything here runs in the parent: the init gets finished values (a capability bit
//! mask, a BPF program, C strings) and only makes syscalls with them.
//!
//! The seccomp filter is a deny list: every syscall that Docker's profile does not allow
//! to a container without extra capabilities returns `EPERM`; `clone` with any namespace
//! flag returns `EPERM` (Docker only allows those with `CAP_SYS_ADMIN`); `clone3` returns
//! `ENOSYS`, so libc falls back to `clone`, whose flags the filter can see (Docker does
//! the same). Other architectures' syscalls (a 32-bit binary via `int 0x80`, the x32 ABI)
//! kill the process: their numbers differ and a deny list for one architecture would not
//! hold for them.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Capability names by number (`include/uapi/linux/capability.h`).
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set without `CAP_MKNOD` (as Podman): an app has no use
/// for device nodes, and without it `mknod` of a device fails everywhere in the container.
pub const DEFAULT_CAPABILITIES: [&str; 13] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// Paths hidden from the container (runc/Docker's list): files get `/dev/null` bound over
/// them, directories an empty read-only tmpfs. Missing ones are skipped.
pub const DEFAULT_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths bind-mounted read-only over themselves (runc/Docker's list).
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `RLIMIT_NOFILE` when none is given: what Docker containers get from dockerd
/// (clamped to the host's `fs.nr_open`).
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// One resource limit, named as in OCI (`RLIMIT_NOFILE`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// The resource number of an OCI rlimit name.
pub fn rlimit_resource(name: &str) -> Result<libc::c_int> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        other => {
            return Err(Error::InvalidSpec(format!(
                "unknown rlimit {other:?} (expected RLIMIT_NOFILE, RLIMIT_NPROC, …)"
            )))
        }
    };
    Ok(r as libc::c_int)
}

/// The bit mask of capability names (`CAP_X` or `X`, any case).
pub fn capability_mask<S: AsRef<str>>(names: &[S]) -> Result<u64> {
    let mut mask = 0u64;
    for name in names {
        let upper = name.as_ref().to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let bit = CAPABILITIES
            .iter()
            .position(|c| *c == full)
            .ok_or_else(|| {
                Error::InvalidSpec(format!(
                    "unknown capability {:?} (expected a name such as CAP_CHOWN)",
                    name.as_ref()
                ))
            })?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// The highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The host's `fs.nr_open`: the highest `RLIMIT_NOFILE` a process may get.
pub fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_NOFILE)
}

/// A compiled seccomp program (classic BPF).
#[derive(Clone)]
pub(crate) struct BpfProgram(pub Vec<libc::sock_filter>);

impl std::fmt::Debug for BpfProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BpfProgram({} instructions)", self.0.len())
    }
}

/// Syscalls that return EPERM: those moby's default profile does not allow to a
/// container without added capabilities (kernel modules, kexec, reboot, swap, mounts and
/// namespaces, keyrings, tracing and other processes' memory, BPF and perf, clock
/// setting, NUMA policy, quotas, accounting, handle-based opens, userfaultfd, io_uring).
#[cfg(target_arch = "x86_64")]
const DENIED: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_get_mempolicy,
    libc::SYS_init_module,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_io_uring_setup,
    libc::SYS_ioperm,
    libc::SYS_iopl,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mbind,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_nfsservctl,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_ptrace,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_set_mempolicy,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS__sysctl,
    libc::SYS_umount2,
    libc::SYS_unshare,
    libc::SYS_uselib,
    libc::SYS_userfaultfd,
    libc::SYS_ustat,
    libc::SYS_vhangup,
];

#[cfg(target_arch = "aarch64")]
const DENIED: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_get_mempolicy,
    libc::SYS_init_module,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_io_uring_setup,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mbind,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_nfsservctl,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_ptrace,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_set_mempolicy,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS_umount2,
    libc::SYS_unshare,
    libc::SYS_userfaultfd,
    libc::SYS_vhangup,
];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// `CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET`: clone flags
/// that make namespaces (moby's `0x7E020000` rule).
const CLONE_NS_FLAGS: u32 = 0x7E02_0000;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7FFF_0000;
/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of `args[0]` (little-endian).
const OFF_ARG0: u32 = 16;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Builds the default filter (see the module doc).
pub(crate) fn default_filter() -> BpfProgram {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld = BPF_LD | BPF_W | BPF_ABS;
    let ret = BPF_RET | BPF_K;
    let jeq = BPF_JMP | BPF_JEQ | BPF_K;
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let mut p = vec![
        stmt(ld, OFF_ARCH),
        jump(jeq, AUDIT_ARCH, 1, 0),
        stmt(ret, SECCOMP_RET_KILL_PROCESS),
        stmt(ld, OFF_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        // x32 syscalls carry bit 30.
        p.push(jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 0, 1));
        p.push(stmt(ret, SECCOMP_RET_KILL_PROCESS));
    }
    for &nr in DENIED {
        p.push(jump(jeq, nr as u32, 0, 1));
        p.push(stmt(ret, eperm));
    }
    p.push(jump(jeq, libc::SYS_clone3 as u32, 0, 1));
    p.push(stmt(ret, SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    // clone: EPERM when any namespace flag is set.
    p.push(jump(jeq, libc::SYS_clone as u32, 0, 4));
    p.push(stmt(ld, OFF_ARG0));
    p.push(jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_NS_FLAGS, 0, 1));
    p.push(stmt(ret, eperm));
    p.push(stmt(ret, SECCOMP_RET_ALLOW));
    p.push(stmt(ret, SECCOMP_RET_ALLOW));
    BpfProgram(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions the filter uses.
    fn run(prog: &BpfProgram, arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = prog.0[pc];
            let code = i.code as u32;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => {
                    let hit = match c & 0xf0 {
                        x if x == libc::BPF_JEQ => acc == i.k,
                        x if x == libc::BPF_JGE => acc >= i.k,
                        x if x == libc::BPF_JSET => acc & i.k != 0,
                        _ => panic!("unexpected op {c:#x}"),
                    };
                    pc += 1 + usize::from(if hit { i.jt } else { i.jf });
                }
            }
        }
    }

    #[test]
    fn the_filter_denies_the_dangerous_and_allows_the_rest() {
        let p = default_filter();
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for nr in [
            libc::SYS_keyctl,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_ptrace,
            libc::SYS_bpf,
            libc::SYS_reboot,
        ] {
            assert_eq!(run(&p, AUDIT_ARCH, nr as u32, 0), eperm, "{nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_execve,
            libc::SYS_exit_group,
        ] {
            assert_eq!(run(&p, AUDIT_ARCH, nr as u32, 0), SECCOMP_RET_ALLOW, "{nr}");
        }
        let clone = libc::SYS_clone as u32;
        let fork_flags = (libc::CLONE_CHILD_SETTID | libc::SIGCHLD) as u64;
        assert_eq!(run(&p, AUDIT_ARCH, clone, fork_flags), SECCOMP_RET_ALLOW);
        let newuser = fork_flags | libc::CLONE_NEWUSER as u64;
        assert_eq!(run(&p, AUDIT_ARCH, clone, newuser), eperm);
        assert_eq!(
            run(&p, AUDIT_ARCH, libc::SYS_clone3 as u32, 0),
            SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(run(&p, 0x4000_0003, 1, 0), SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn capability_names() {
        assert_eq!(capability_mask(&["CAP_CHOWN", "kill"]).unwrap(), 1 | 1 << 5);
        let m = capability_mask(&DEFAULT_CAPABILITIES).unwrap();
        assert_eq!(m & (1 << 21), 0, "no CAP_SYS_ADMIN");
        assert_eq!(m & (1 << 27), 0, "no CAP_MKNOD");
        assert!(capability_mask(&["CAP_NOPE"]).is_err());
        assert_eq!(rlimit_resource("RLIMIT_NOFILE").unwrap(), 7);
        assert!(rlimit_resource("NOFILE").is_err());
    }
}

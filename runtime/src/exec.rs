//! `exec`: a new process inside a running container. It joins every namespace of the
//! container's init (cgroup, ipc, uts, net, pid, mnt) and its cgroup(s), and gets the
//! container's privileges (capabilities, seccomp, rlimits, `no_new_privs`, user).
//!
//! A process cannot enter a pid namespace itself, only its children are born there, and
//! the caller (the agent) is multi-threaded, which `setns` into a mount namespace
//! refuses. So: the caller clones a helper (no allocation after the clone, as in
//! `init`), into the container's cgroup2 directory where there is one, releases it; the
//! helper moves itself into the v1 hierarchies (as the init does), joins the namespaces and forks the process, which execs; the helper waits for it and exits
//! with its status (code, or 128 + signal). Errors before the exec come back on a
//! close-on-exec pipe, so [`exec`] returns once the process runs (or with the error).

use std::ffi::{c_char, CString};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::create::{join_fds, raw_tasks};
use crate::init::{self, above_stdio, die, read_byte, EXEC_FAILED};
use crate::lifecycle::{live_status, load, manager, sys_err};
use crate::plan::Privileges;
use crate::state;
use crate::{Error, Result, RuntimeConfig, Status, DEFAULT_PATH};

/// Namespaces joined, in this order (mnt last but one: after it, `/proc` paths are the
/// container's; cgroup last so its root is the container's cgroup, which we joined).
const NAMESPACES: [(&str, libc::c_int); 6] = [
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// A process to run in a container.
#[derive(Debug, Default)]
pub struct ExecSpec {
    pub args: Vec<String>,
    /// `KEY=VALUE`; empty = the container's environment.
    pub env: Vec<String>,
    /// `KEY=VALUE` added to (or replacing in) `env` or the container's environment, as
    /// `docker exec -e` does.
    pub extra_env: Vec<String>,
    /// Working directory; None = the container's.
    pub cwd: Option<String>,
    /// uid, gid; None = the container's user.
    pub user: Option<(u32, u32)>,
    /// Give the process a new pty (its stdin/stdout/stderr, and controlling terminal);
    /// [`ExecProcess::pty`] is the master side.
    pub tty: bool,
    /// With `tty`: the pty's window size (rows, columns), set before the process starts
    /// (set after, a program that asks at once, as `stty size` does, sees 0×0).
    pub winsize: Option<(u16, u16)>,
    /// Without `tty`: the process's stdin/stdout/stderr; None = the caller's.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The five capability sets of the process (OCI `process.capabilities` of runc's
    /// `exec --process`); None = the container's.
    pub capability_sets: Option<crate::CapabilitySets>,
    /// Capabilities added to the bounding, effective and permitted sets (runc's
    /// `exec --cap`).
    pub extra_caps: Vec<String>,
    /// Supplementary groups; None = the container's.
    pub additional_gids: Option<Vec<u32>>,
    /// `no_new_privs`; None = the container's.
    pub no_new_privileges: Option<bool>,
    /// rlimits; None = the container's.
    pub rlimits: Option<Vec<crate::Rlimit>>,
    /// Do not keep a waiting helper: the helper exits as soon as the process runs, so the
    /// process is reparented to the caller's subreaper (containerd's shim, conmon), which
    /// reaps it, as runc's `exec --detach`. [`ExecProcess::wait`] then returns 0 at once.
    pub detach: bool,
}

/// A process started by [`crate::Runtime::exec`].
#[derive(Debug)]
pub struct ExecProcess {
    /// Host pid of the helper that waits for the process (its parent).
    pub pid: i32,
    /// Host pid of the process itself (what runc's `exec --pid-file` records).
    pub process_pid: i32,
    /// The pty master when `tty` was asked for.
    pub pty: Option<OwnedFd>,
}

impl ExecProcess {
    /// Blocks until the process exits; its exit code (128 + N if killed by signal N).
    pub fn wait(&self) -> Result<i32> {
        loop {
            match waitpid(Pid::from_raw(self.pid), None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys_err("waiting for the exec'd process")(e)),
            }
        }
    }
}

/// Whether the init of `pid` is in another user namespace than we are (a new or a
/// joined one): then it is joined first.
fn other_user_ns(pid: i32) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let ino = |path: String| {
        fs::metadata(&path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| Error::Io {
                what: format!("reading {path}"),
                source: e,
            })
    };
    Ok(ino(format!("/proc/{pid}/ns/user"))? != ino("/proc/self/ns/user".into())?)
}

/// `NS_GET_USERNS` = `_IO(0xb7, 0x1)` (linux/nsfs.h): the owning user namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// The (device, inode) of a namespace descriptor.
fn ns_id(fd: &OwnedFd) -> Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd).map_err(sys_err("reading a namespace descriptor"))?;
    Ok((st.st_dev, st.st_ino))
}

/// With a user namespace to join (listed first), moves the namespaces it does not own
/// before it: a network namespace the agent made belongs to the host's user namespace,
/// where the helper has no capability once it joined the container's. Joined first,
/// while the helper is still host root, they are entered like the others.
fn host_owned_first(ns: Vec<(OwnedFd, libc::c_int)>) -> Result<Vec<(OwnedFd, libc::c_int)>> {
    let user = match ns.first() {
        Some((fd, libc::CLONE_NEWUSER)) => ns_id(fd)?,
        _ => return Ok(ns),
    };
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for (fd, flag) in ns {
        if flag == libc::CLONE_NEWUSER {
            rest.push((fd, flag));
            continue;
        }
        // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor (or -1).
        let owner = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_USERNS) };
        if owner < 0 {
            return Err(
                sys_err("finding the owner of a namespace of the container")(Errno::last()),
            );
        }
        // SAFETY: a new descriptor from the ioctl, owned by nobody else.
        let owner = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(owner) };
        match ns_id(&owner)? == user {
            true => rest.push((fd, flag)),
            false => first.push((fd, flag)),
        }
    }
    first.extend(rest);
    Ok(first)
}

/// Everything the helper and the process use, prepared before the clone.
struct Prepared {
    ns: Vec<(OwnedFd, libc::c_int)>,
    /// The container's root to chroot into, when it has no mount namespace of its own
    /// (joining the host's would leave the process at the host's `/`).
    chroot: Option<CString>,
    cwd: CString,
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    privileges: Privileges,
    stdio: [RawFd; 3],
    /// A pty of the container's devpts is the process's terminal (see `console`).
    tty: bool,
    /// With `tty`: the socket the process sends the pty master over.
    console: RawFd,
    /// With `tty`: the window size set on the pty before the exec.
    winsize: Option<libc::winsize>,
    /// The helper exits once the process runs instead of waiting for it.
    detach: bool,
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec(format!("{what} {s:?} contains a NUL byte")))
}

/// Runs `spec` in container `id`, which must be running.
pub(crate) fn exec(cfg: &RuntimeConfig, id: &str, spec: ExecSpec) -> Result<ExecProcess> {
    let (layout, sf) = load(cfg, id)?;
    let sf = sf.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let status = live_status(&layout, &sf);
    if status != Status::Running {
        return Err(Error::Start(format!(
            "container {id:?} is {status}; exec needs a running container"
        )));
    }
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(Error::InvalidSpec(
            "exec: args is empty, nothing to run".into(),
        ));
    }
    let pid = sf.state.pid;
    let mut ns = Vec::new();
    if other_user_ns(pid)? {
        // First: the other namespaces belong to it, joining them needs its capabilities.
        let path = format!("/proc/{pid}/ns/user");
        let f = fs::File::open(&path).map_err(|e| Error::Io {
            what: format!("opening {path}"),
            source: e,
        })?;
        ns.push((above_stdio(f.into())?, libc::CLONE_NEWUSER));
    }
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        match fs::File::open(&path) {
            Ok(f) => ns.push((above_stdio(f.into())?, flag)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "cgroup" => {}
            Err(e) => {
                return Err(Error::Io {
                    what: format!("opening {path}"),
                    source: e,
                })
            }
        }
    }
    let ns = host_owned_first(ns)?;
    // The namespaces are ours only if the pid was not recycled meanwhile.
    if !state::is_alive(pid, sf.pid_start_time) {
        return Err(Error::Start(format!("container {id:?} exited")));
    }
    let mut env = if spec.env.is_empty() {
        sf.spec.env.clone()
    } else {
        spec.env.clone()
    };
    for extra in &spec.extra_env {
        let key = extra.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(extra.clone());
    }
    let env = &env;
    let name = &spec.args[0];
    let candidates: Vec<CString> = if name.contains('/') {
        vec![cstring("args[0]", name)?]
    } else {
        let path = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| cstring("PATH entry", &format!("{}/{name}", d.trim_end_matches('/'))))
            .collect::<Result<_>>()?
    };
    if candidates.is_empty() {
        return Err(Error::Start(format!(
            "exec {name:?}: executable file not found in $PATH"
        )));
    }
    let exec_opts = exec_options(&sf.options, &spec);
    let mut keep: Vec<OwnedFd> = Vec::new();
    // With a terminal the process opens the pty itself, in the container's devpts (so
    // `tty` and ttyname see a /dev/pts path of the container, as runc's), and sends the
    // master back over this socket pair before it execs.
    let mut console: Option<std::os::unix::net::UnixStream> = None;
    let mut console_child: RawFd = -1;
    let winsize = spec
        .winsize
        .filter(|(rows, cols)| spec.tty && *rows > 0 && *cols > 0)
        .map(|(rows, cols)| libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
    let stdio = if spec.tty {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| Error::Io {
            what: "making the console socket pair".into(),
            source: e,
        })?;
        let theirs = above_stdio(theirs.into())?;
        console_child = theirs.as_raw_fd();
        keep.push(theirs);
        console = Some(ours);
        [0, 1, 2]
    } else {
        let mut out = [0, 1, 2];
        for (i, fd) in [spec.stdin, spec.stdout, spec.stderr]
            .into_iter()
            .enumerate()
        {
            if let Some(fd) = fd {
                let fd = above_stdio(fd)?;
                out[i] = fd.as_raw_fd();
                keep.push(fd);
            }
        }
        out
    };
    let prepared = Prepared {
        ns,
        chroot: match sf.options.namespaces.mount {
            crate::Namespace::Host => Some(cstring("rootfs", &sf.state.rootfs.to_string_lossy())?),
            _ => None,
        },
        cwd: cstring("cwd", spec.cwd.as_deref().unwrap_or(&sf.spec.cwd))?,
        candidates,
        argv: spec
            .args
            .iter()
            .map(|a| cstring("argument", a))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .map(|e| cstring("env entry", e))
            .collect::<Result<_>>()?,
        privileges: Privileges::new(spec.user.or(sf.spec.user), &exec_opts)?,
        stdio,
        tty: spec.tty,
        console: console_child,
        winsize,
        detach: spec.detach,
    };
    let (helper, process_pid) = spawn_helper(cfg, id, &prepared)?;
    drop(keep);
    // The process sent the master before its exec, which spawn_helper waited for.
    let pty_master = match &console {
        Some(sock) => Some(crate::oci::receive_console(sock)?),
        None => None,
    };
    Ok(ExecProcess {
        pid: helper,
        process_pid,
        pty: pty_master,
    })
}

/// The container's options with what the exec overrides: capabilities, groups,
/// `no_new_privs`, rlimits.
fn exec_options(container: &crate::ContainerOptions, spec: &ExecSpec) -> crate::ContainerOptions {
    let mut opts = container.clone();
    if let Some(sets) = &spec.capability_sets {
        opts.capability_sets = Some(sets.clone());
    }
    if !spec.extra_caps.is_empty() {
        let mut sets = opts
            .capability_sets
            .clone()
            .unwrap_or_else(|| crate::CapabilitySets {
                bounding: opts.capabilities.clone(),
                effective: opts.capabilities.clone(),
                permitted: opts.capabilities.clone(),
                ..Default::default()
            });
        for cap in &spec.extra_caps {
            for set in [&mut sets.bounding, &mut sets.effective, &mut sets.permitted] {
                if !set.contains(cap) {
                    set.push(cap.clone());
                }
            }
        }
        opts.capability_sets = Some(sets);
    }
    if let Some(gids) = &spec.additional_gids {
        opts.additional_gids = gids.clone();
    }
    if let Some(nnp) = spec.no_new_privileges {
        opts.no_new_privileges = nnp;
    }
    if let Some(rlimits) = &spec.rlimits {
        opts.rlimits = rlimits.clone();
    }
    opts
}

/// Clones the helper, puts it into the container's cgroup, releases it and waits until
/// the process has exec'd (or failed). The helper's pid and the process's.
fn spawn_helper(cfg: &RuntimeConfig, id: &str, p: &Prepared) -> Result<(i32, i32)> {
    let (sync_read, sync_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("making a pipe"))?;
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("making a pipe"))?;
    let (pid_read, pid_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("making a pipe"))?;
    let sync_read = above_stdio(sync_read)?;
    let err_write = above_stdio(err_write)?;
    let pid_write = above_stdio(pid_write)?;
    let argv: Vec<*const c_char> = p
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    let envp: Vec<*const c_char> = p
        .envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    // The helper keeps only what it uses: a caller's other descriptors (the write end of
    // the process's stdin pipe, say) must not stay open in it, or the process would never
    // see end of input.
    let cg = manager(cfg, id);
    let (tasks, into) = join_fds(&*cg)?;
    let cgroup_tasks = raw_tasks(&tasks);
    let mut keep: Vec<RawFd> = p.ns.iter().map(|(fd, _)| fd.as_raw_fd()).collect();
    keep.extend(p.stdio);
    keep.push(p.console);
    keep.extend([
        sync_read.as_raw_fd(),
        err_write.as_raw_fd(),
        pid_write.as_raw_fd(),
    ]);
    keep.extend(cgroup_tasks.iter().map(|(fd, _)| *fd));
    keep.sort_unstable();
    keep.dedup();
    let args = HelperArgs {
        p,
        sync: sync_read.as_raw_fd(),
        err: err_write.as_raw_fd(),
        pid: pid_write.as_raw_fd(),
        argv: &argv,
        envp: &envp,
        keep: &keep,
        cgroup_tasks: &cgroup_tasks,
    };
    let mut old = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::all()),
        Some(&mut old),
    )
    .map_err(sys_err("blocking signals around clone"))?;
    let (ret, errno, born_in_cgroup) = init::clone_child(0, into.as_ref().map(|f| f.as_fd()));
    if ret == 0 {
        // SAFETY: we are the cloned child; helper_main only makes raw syscalls on memory
        // prepared above and never returns.
        unsafe { helper_main(&args) }
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&old),
        None,
    );
    if ret < 0 {
        return Err(sys_err("cloning the exec helper")(errno));
    }
    let pid = ret as i32;
    drop(sync_read);
    drop(err_write);
    drop(pid_write);
    let reap = |pid: i32| {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    };
    drop(tasks);
    // Without clone3 the helper is not in the cgroup2 directory yet: move it (and, the
    // same write, into the v1 hierarchies it joins itself too).
    if into.is_some() && !born_in_cgroup {
        if let Err(e) = cg.add_process(pid) {
            reap(pid);
            return Err(e.into());
        }
    }
    if let Err(e) = nix::unistd::write(&sync_write, &[1u8]) {
        reap(pid);
        return Err(sys_err("releasing the exec helper")(e));
    }
    drop(sync_write);
    let mut msg = Vec::new();
    let mut buf = [0u8; 1100];
    loop {
        match nix::unistd::read(&err_read, &mut buf) {
            Ok(0) => break,
            Ok(n) => msg.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => {
                reap(pid);
                return Err(sys_err("reading the exec helper's report")(e));
            }
        }
    }
    if msg.is_empty() {
        let mut raw = [0u8; 4];
        let mut got = 0;
        while got < raw.len() {
            match nix::unistd::read(&pid_read, &mut raw[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(sys_err("reading the exec'd process's pid")(e)),
            }
        }
        if got < raw.len() {
            return Err(Error::Start(
                "the exec helper did not report the process's pid".into(),
            ));
        }
        return Ok((pid, i32::from_ne_bytes(raw)));
    }
    let _ = waitpid(Pid::from_raw(pid), None);
    Err(Error::Start(init::decode(&msg).unwrap_or_default()))
}

struct HelperArgs<'a> {
    p: &'a Prepared,
    sync: RawFd,
    err: RawFd,
    /// Where the helper writes the process's host pid (4 bytes, native order).
    pid: RawFd,
    argv: &'a [*const c_char],
    envp: &'a [*const c_char],
    /// Sorted descriptors the helper keeps open.
    keep: &'a [RawFd],
    /// v1 `tasks` descriptors to write `0` to, and their paths.
    cgroup_tasks: &'a [(RawFd, &'a std::ffi::CStr)],
}

/// The helper: joins the namespaces, forks the process, waits for it.
///
/// # Safety
/// Only in the cloned child. No allocation, locks or unwinding.
unsafe fn helper_main(a: &HelperArgs) -> ! {
    let p = a.p;
    // SAFETY: raw syscalls on descriptors and buffers prepared by the parent.
    unsafe {
        init::reset_signals();
        init::close_others(a.keep);
        crate::child::join_cgroups(a.cgroup_tasks, a.err);
        if read_byte(a.sync) != 1 {
            libc::_exit(1);
        }
        libc::close(a.sync);
        for (fd, flag) in &p.ns {
            if libc::setns(fd.as_raw_fd(), *flag) != 0 {
                die(
                    a.err,
                    1,
                    &[
                        b"joining the container's ",
                        crate::ns::type_name(*flag).as_bytes(),
                        b" namespace",
                    ],
                );
            }
            libc::close(fd.as_raw_fd());
            // Our host ids are unmapped in the container's user namespace: take its
            // root's, as the init did.
            if *flag == libc::CLONE_NEWUSER
                && (libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0)
            {
                die(a.err, 1, &[b"becoming root of the user namespace"]);
            }
        }
        if let Some(root) = &p.chroot {
            if libc::chroot(root.as_ptr()) != 0 {
                die(a.err, 1, &[b"chroot into ", root.to_bytes()]);
            }
        }
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            die(a.err, 1, &[b"chdir to ", p.cwd.to_bytes()]);
        }
        let child = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if child < 0 {
            die(a.err, 1, &[b"forking the process in the container"]);
        }
        if child == 0 {
            process_main(a);
        }
        let pid = (child as i32).to_ne_bytes();
        // A 4-byte write to a fresh pipe is whole or fails; the parent checks the length.
        libc::write(a.pid, pid.as_ptr().cast(), pid.len());
        libc::close(a.pid);
        libc::close(a.err);
        if p.detach {
            // The process is reparented to the caller's subreaper, which reaps it.
            libc::_exit(0);
        }
        let mut status = 0;
        while libc::waitpid(child as libc::pid_t, &mut status, 0) < 0 {
            if init::errno() != libc::EINTR {
                libc::_exit(1);
            }
        }
        if libc::WIFSIGNALED(status) {
            libc::_exit(128 + libc::WTERMSIG(status));
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// The process: stdio, privileges, exec.
///
/// # Safety
/// Only in the helper's forked child.
unsafe fn process_main(a: &HelperArgs) -> ! {
    let p = a.p;
    // SAFETY: as in helper_main.
    unsafe {
        if p.tty {
            // A new pty of the container's devpts: master to the caller, the other end
            // our controlling terminal and stdin/stdout/stderr.
            crate::child::console(p.console, a.err);
            if let Some(ws) = &p.winsize {
                libc::ioctl(0, libc::TIOCSWINSZ, ws as *const libc::winsize);
            }
        }
        for (target, &fd) in p.stdio.iter().enumerate() {
            if fd != target as RawFd && libc::dup2(fd, target as RawFd) < 0 {
                die(a.err, 1, &[b"setting up stdin/stdout/stderr"]);
            }
        }
        init::close_others(&[a.err]);
        crate::harden::apply(&p.privileges, a.err);
        let mut first_errno = 0;
        for c in &p.candidates {
            libc::execve(c.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
            let e = init::errno();
            if first_errno == 0 || (first_errno == libc::ENOENT && e != libc::ENOENT) {
                first_errno = e;
            }
        }
        *libc::__errno_location() = first_errno;
        die(
            a.err,
            EXEC_FAILED,
            &[b"exec \"", p.argv[0].to_bytes(), b"\""],
        )
    }
}

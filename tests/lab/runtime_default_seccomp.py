#!/usr/bin/python3
"""The pod lab's seccomp filter: what a container runtime's default profile
(RuntimeDefault, as PodSecurity "restricted" requires) allows a container with
every capability dropped, written out with libseccomp as classic BPF.

The facts are those of moby/profiles seccomp/default.json (docs/testing.md
cites it): anything not listed fails with EPERM; `socket` is allowed except
for AF_VSOCK; `personality` only with the five harmless personas; `clone`
only without namespace flags, and `clone3` fails with ENOSYS so that libc
falls back to `clone`, whose flags a filter can see. Rules that need a
capability (mount, unshare, setns, chroot, ptrace, bpf, ...) are left out:
a restricted pod has none.

Usage: runtime_default_seccomp.py OUT [--deny NAME,...]
Writes the BPF program to OUT. --deny leaves those syscalls out, as an older
runtime's profile would (pidfd_open came to moby's in 2020); the name
`netlink-membership` refuses joining netlink multicast groups (setsockopt at
level SOL_NETLINK), as a sandbox that forbids sock_diag's events would.
"""
import errno
import sys

import seccomp

ALLOWED = """
accept accept4 access add_key adjtimex alarm bind brk cachestat capget capset
chdir chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres
clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup
dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait
epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue
futex_time64 futex_wait futex_waitv futex_wake futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid
gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
io_submit ipc keyctl kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount
listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat
lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore
mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64
preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom
recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat
rename renameat renameat2 request_key restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32
setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown
sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair
splice stat stat64 statfs statfs64 statmount statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname
unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork
vmsplice wait4 waitid waitpid write writev
process_vm_readv process_vm_writev ptrace arch_prctl modify_ldt
""".split()

AF_VSOCK = 40
SOL_NETLINK = 270
# PER_LINUX, UNAME26, PER_LINUX32, PER_LINUX32|UNAME26, and the query 0xffffffff.
PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
NAMESPACE_FLAGS = 0x7E020000


def build(denied=()):
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    # The runtime loads the profile for the native ABI and the ones an
    # x86_64 kernel also runs (i386, x32), so no ABI is a way around it.
    for arch in (seccomp.Arch.X86, seccomp.Arch.X32):
        try:
            f.add_arch(arch)
        except Exception:
            pass
    unknown = []

    def rule(action, name, *args):
        try:
            f.add_rule(action, name, *args)
        except Exception:
            # A syscall this libseccomp does not know yet; the kernel's
            # number for it then gets the default action, as with the runtime.
            unknown.append(name)

    for name in ALLOWED:
        if name not in denied:
            if name == "setsockopt" and "netlink-membership" in denied:
                rule(seccomp.ALLOW, name, seccomp.Arg(1, seccomp.NE, SOL_NETLINK))
            else:
                rule(seccomp.ALLOW, name)
    rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.NE, AF_VSOCK))
    for persona in PERSONAS:
        rule(seccomp.ALLOW, "personality", seccomp.Arg(0, seccomp.EQ, persona))
    rule(seccomp.ALLOW, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, NAMESPACE_FLAGS, 0))
    rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f, unknown


if __name__ == "__main__":
    denied = sys.argv[3].split(",") if sys.argv[2:3] == ["--deny"] else []
    f, unknown = build(denied)
    with open(sys.argv[1], "wb") as out:
        f.export_bpf(out)
    if unknown:
        print("unknown to this libseccomp (denied):", " ".join(unknown), file=sys.stderr)

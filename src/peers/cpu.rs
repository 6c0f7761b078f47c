//! CPU time of other pullers' processes, from `/proc`: a daemon (found as the
//! process that listens on its socket) with all its descendants, and the client
//! commands pulltime runs (by `wait4`'s resource usage).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::oci::record::CpuUsage;

/// Clock ticks per second of `/proc/*/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// One process's line of `/proc/PID/stat`, the fields we need.
#[derive(Debug, Clone)]
struct Stat {
    pid: u32,
    comm: String,
    ppid: u32,
    /// utime + cutime (the children it reaped), ticks.
    user: u64,
    /// stime + cstime, ticks.
    system: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 2..].split(' ').collect();
    // rest[0] is field 3 (state); utime is field 14, so rest[11].
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        pid,
        comm,
        ppid: field(4)? as u32,
        user: field(14)? + field(16)?,
        system: field(15)? + field(17)?,
    })
}

fn all_processes() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The CPU of a process tree at one moment.
#[derive(Debug, Clone, Default)]
pub struct TreeSample {
    /// Ticks per process id (own plus reaped children), so that a process that
    /// starts and ends between two samples is still counted through its parent.
    by_pid: HashMap<u32, (String, u64, u64)>,
}

/// Samples `root` and all its descendants.
pub fn sample_tree(root: u32) -> TreeSample {
    let procs = all_processes();
    let mut children: HashMap<u32, Vec<&Stat>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = TreeSample::default();
    let mut stack: Vec<&Stat> = procs.iter().filter(|p| p.pid == root).collect();
    let mut seen = HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p.pid) {
            continue;
        }
        out.by_pid.insert(p.pid, (p.comm.clone(), p.user, p.system));
        stack.extend(children.get(&p.pid).into_iter().flatten());
    }
    out
}

/// The CPU a tree used between two samples. Processes gone by `after` (and not
/// reaped into a surviving parent) are lost, which is why callers sample
/// long-lived daemons.
pub fn tree_usage(before: &TreeSample, after: &TreeSample) -> CpuUsage {
    let tps = ticks_per_second();
    let (mut user, mut system) = (0u64, 0u64);
    let mut names: Vec<String> = Vec::new();
    for (pid, (comm, u, s)) in &after.by_pid {
        let (u0, s0) = before
            .by_pid
            .get(pid)
            .map_or((0, 0), |(_, u0, s0)| (*u0, *s0));
        user += u.saturating_sub(u0);
        system += s.saturating_sub(s0);
        if !names.contains(comm) {
            names.push(comm.clone());
        }
    }
    names.sort();
    CpuUsage {
        user_s: user as f64 / tps,
        system_s: system as f64 / tps,
        processes: names,
    }
}

/// Adds `more` to `usage`.
pub fn add(usage: &mut CpuUsage, more: &CpuUsage) {
    usage.user_s += more.user_s;
    usage.system_s += more.system_s;
    for p in &more.processes {
        if !usage.processes.contains(p) {
            usage.processes.push(p.clone());
        }
    }
}

/// The process that listens on the unix socket `path`, if this process may see it
/// (found through `/proc/net/unix` and the processes' open sockets).
pub fn socket_owner(path: &Path) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let wanted = path.to_str()?;
    let inodes: HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
            (cols.len() >= 8 && cols[7] == wanted && cols[3] == "00010000")
                .then(|| cols[6].to_string())
        })
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']'))
                    && inodes.contains(inode)
                {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// This process's CPU so far (all its threads).
pub fn own_usage() -> CpuUsage {
    // SAFETY: rusage is plain old data; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    from_rusage(&r, "pulltime")
}

/// The CPU used between two readings of the same processes.
pub fn since(before: &CpuUsage, after: &CpuUsage) -> CpuUsage {
    CpuUsage {
        user_s: (after.user_s - before.user_s).max(0.0),
        system_s: (after.system_s - before.system_s).max(0.0),
        processes: after.processes.clone(),
    }
}

/// CPU from a `wait4` resource usage.
pub fn from_rusage(r: &libc::rusage, name: &str) -> CpuUsage {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    CpuUsage {
        user_s: secs(r.ru_utime),
        system_s: secs(r.ru_stime),
        processes: vec![name.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_tree_is_sampled_and_its_cpu_counted() {
        let me = std::process::id();
        let before = sample_tree(me);
        assert!(before.by_pid.contains_key(&me));
        // Burn some CPU so the difference is visible at 10 ms ticks.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = tree_usage(&before, &sample_tree(me));
        assert!(used.user_s + used.system_s >= 0.1, "{used:?}");
    }

    #[test]
    fn a_listening_socket_is_traced_to_its_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(socket_owner(&path), Some(std::process::id()));
        assert_eq!(socket_owner(&dir.path().join("none.sock")), None);
    }
}

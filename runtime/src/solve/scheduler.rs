//! The scheduler: runs a DAG of vertices, each exactly once, every vertex started as soon
//! as its inputs are done, the first failure cancelling the rest.
//!
//! A ready queue: only vertices whose inputs are done get a thread, and at most
//! [`MAX_THREADS`] run at once, so a graph of any size runs with bounded threads in time
//! linear in its size (a thread per vertex up front ran out of threads at 20,000). Steps
//! run on plain threads, not rayon's pool: blocking steps such as RUN would occupy its few
//! threads. It knows only indices and dependencies; what a vertex does is the [`Worker`]'s
//! business.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

/// How many vertices may run at once. RUN steps are further bounded by `--jobs`; this
/// bounds threads, far above what independent stages of a real build need at once.
pub const MAX_THREADS: usize = 128;

/// Executes one vertex given the results of its dependencies (in `deps` order).
pub trait Worker: Sync {
    type Output: Clone + Send + Sync;
    type Error: Send;
    fn run(&self, vertex: usize, inputs: &[Self::Output], cancel: &AtomicBool) -> Result<Self::Output, Self::Error>;
}

/// Why a schedule stopped.
#[derive(Debug)]
pub enum ScheduleError<E> {
    /// Vertex `vertex` failed with `error` (the first failure; the rest were cancelled).
    Failed { vertex: usize, error: E },
    /// `cancel` was set from outside (Ctrl-C) before everything finished.
    Cancelled,
}

/// Runs every vertex with `needed[i]` (whose dependencies must be needed too) and returns
/// their outputs. `deps[i]` lists the vertices `i` reads, all with smaller indices.
pub fn run<W: Worker>(
    deps: &[Vec<usize>],
    needed: &[bool],
    worker: &W,
    cancel: &AtomicBool,
) -> Result<Vec<Option<W::Output>>, ScheduleError<W::Error>> {
    let n = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for v in (0..n).filter(|&v| needed[v]) {
        waiting[v] = deps[v].len();
        for &d in &deps[v] {
            dependents[d].push(v);
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&v| needed[v] && waiting[v] == 0).collect();
    let mut results: Vec<Option<W::Output>> = vec![None; n];
    let mut first_error: Option<(usize, W::Error)> = None;
    let (tx, rx) = mpsc::channel::<(usize, Result<W::Output, W::Error>)>();
    std::thread::scope(|scope| {
        let mut running = 0usize;
        loop {
            while running < MAX_THREADS && !cancel.load(Ordering::SeqCst) {
                let Some(v) = ready.pop_front() else { break };
                let inputs: Vec<W::Output> =
                    deps[v].iter().map(|&d| results[d].clone().expect("a dependency finished")).collect();
                let tx = tx.clone();
                scope.spawn(move || {
                    let r = worker.run(v, &inputs, cancel);
                    let _ = tx.send((v, r));
                });
                running += 1;
            }
            if running == 0 {
                break;
            }
            let Ok((v, r)) = rx.recv() else { break };
            running -= 1;
            match r {
                Ok(o) => {
                    results[v] = Some(o);
                    for &d in &dependents[v] {
                        waiting[d] -= 1;
                        if waiting[d] == 0 {
                            ready.push_back(d);
                        }
                    }
                }
                Err(e) => {
                    if first_error.is_none() && !cancel.load(Ordering::SeqCst) {
                        first_error = Some((v, e));
                    }
                    cancel.store(true, Ordering::SeqCst);
                }
            }
        }
    });
    if let Some((vertex, error)) = first_error {
        return Err(ScheduleError::Failed { vertex, error });
    }
    if (0..n).any(|v| needed[v] && results[v].is_none()) {
        return Err(ScheduleError::Cancelled);
    }
    Ok(results)
}

/// A counting semaphore (bounds concurrent RUN steps to `--jobs`).
pub struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Semaphore {
    pub fn new(n: usize) -> Semaphore {
        Semaphore { free: Mutex::new(n.max(1)), cv: Condvar::new() }
    }

    /// A permit if one is free now.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if *free == 0 {
            return None;
        }
        *free -= 1;
        Some(Permit { sem: self })
    }

    /// Waits for a permit; gives up (None) when `cancel` is set.
    pub fn acquire<'a>(&'a self, cancel: &AtomicBool) -> Option<Permit<'a>> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            free =
                self.cv.wait_timeout(free, std::time::Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
        *free -= 1;
        Some(Permit { sem: self })
    }
}

/// Returns its permit on drop.
pub struct Permit<'a> {
    sem: &'a Semaphore,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.sem.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.sem.cv.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    struct Sleepy {
        running: AtomicUsize,
        max_running: AtomicUsize,
        calls: Mutex<Vec<usize>>,
        fail: Option<usize>,
        sem: Option<Semaphore>,
    }

    impl Worker for Sleepy {
        type Output = usize;
        type Error = String;
        fn run(&self, v: usize, inputs: &[usize], cancel: &AtomicBool) -> Result<usize, String> {
            let _permit = match &self.sem {
                Some(s) => Some(s.acquire(cancel).ok_or("cancelled")?),
                None => None,
            };
            self.calls.lock().unwrap().push(v);
            let r = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(r, Ordering::SeqCst);
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(100) {
                if cancel.load(Ordering::SeqCst) {
                    self.running.fetch_sub(1, Ordering::SeqCst);
                    return Err("cancelled".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.fail == Some(v) {
                return Err(format!("vertex {v} failed"));
            }
            Ok(v + inputs.iter().sum::<usize>())
        }
    }

    fn sleepy(fail: Option<usize>, jobs: Option<usize>) -> Sleepy {
        Sleepy {
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            calls: Mutex::new(vec![]),
            fail,
            sem: jobs.map(Semaphore::new),
        }
    }

    #[test]
    fn independent_vertices_overlap_and_dependents_wait() {
        // 0..4 independent, 4 reads all of them.
        let deps = vec![vec![], vec![], vec![], vec![], vec![0, 1, 2, 3]];
        let w = sleepy(None, None);
        let out = run(&deps, &[true; 5], &w, &AtomicBool::new(false)).unwrap();
        assert_eq!(out[4], Some(4 + 1 + 2 + 3));
        assert_eq!(w.max_running.load(Ordering::SeqCst), 4);
        assert_eq!(*w.calls.lock().unwrap().last().unwrap(), 4);
        assert_eq!(w.calls.lock().unwrap().len(), 5, "each vertex once");
    }

    #[test]
    fn jobs_limit_bounds_concurrency() {
        let deps = vec![vec![], vec![], vec![], vec![]];
        let w = sleepy(None, Some(2));
        run(&deps, &[true; 4], &w, &AtomicBool::new(false)).unwrap();
        assert_eq!(w.max_running.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn first_failure_cancels_the_rest_and_skips_dependents() {
        let deps = vec![vec![], vec![], vec![0]];
        let w = sleepy(Some(0), None);
        let cancel = AtomicBool::new(false);
        match run(&deps, &[true; 3], &w, &cancel) {
            Err(ScheduleError::Failed { vertex, error }) => {
                assert_eq!(vertex, 0);
                assert_eq!(error, "vertex 0 failed");
            }
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
        assert!(!w.calls.lock().unwrap().contains(&2));
    }

    struct Sum;
    impl Worker for Sum {
        type Output = usize;
        type Error = String;
        fn run(&self, v: usize, inputs: &[usize], _: &AtomicBool) -> Result<usize, String> {
            Ok(v + inputs.iter().sum::<usize>())
        }
    }

    /// Issue 13: a 20,000-vertex chain and 20,000 independent vertices run with bounded
    /// threads (a thread per vertex up front failed to spawn).
    #[test]
    fn large_graphs_run_with_bounded_threads() {
        let n = 20_000;
        let chain: Vec<Vec<usize>> = (0..n).map(|v| if v == 0 { vec![] } else { vec![v - 1] }).collect();
        let out = run(&chain, &vec![true; n], &Sum, &AtomicBool::new(false)).unwrap();
        assert_eq!(out[n - 1], Some((0..n).sum()));
        let flat: Vec<Vec<usize>> = vec![vec![]; n];
        let out = run(&flat, &vec![true; n], &Sum, &AtomicBool::new(false)).unwrap();
        assert_eq!(out[n - 1], Some(n - 1));
    }

    #[test]
    fn unneeded_vertices_do_not_run_and_outside_cancel_stops() {
        let deps = vec![vec![], vec![]];
        let w = sleepy(None, None);
        let out = run(&deps, &[true, false], &w, &AtomicBool::new(false)).unwrap();
        assert_eq!(out, vec![Some(0), None]);
        let cancel = AtomicBool::new(true);
        assert!(matches!(run(&deps, &[true, true], &w, &cancel), Err(ScheduleError::Cancelled)));
    }
}

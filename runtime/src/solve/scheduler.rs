//! The scheduler: runs a DAG of vertices with every vertex started as soon as its inputs
//! are done, each vertex exactly once, on plain threads (blocking steps such as RUN must
//! not occupy rayon's small global pool), the first failure cancelling the rest.
//!
//! It knows only indices and dependencies; what a vertex does is the [`Worker`]'s business.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Executes one vertex given the results of its dependencies (in `deps` order).
pub trait Worker: Sync {
    type Output: Clone + Send + Sync;
    type Error: Send;
    fn run(&self, vertex: usize, inputs: &[Self::Output], cancel: &AtomicBool) -> Result<Self::Output, Self::Error>;
}

enum Slot<O> {
    Pending,
    Done(O),
    Failed,
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
    let state: Mutex<Vec<Slot<W::Output>>> = Mutex::new((0..n).map(|_| Slot::Pending).collect());
    let changed = Condvar::new();
    let first_error: Mutex<Option<(usize, W::Error)>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for v in (0..n).filter(|&v| needed[v]) {
            let (state, changed, first_error) = (&state, &changed, &first_error);
            let my_deps = &deps[v];
            scope.spawn(move || {
                let inputs = {
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if cancel.load(Ordering::SeqCst) || my_deps.iter().any(|&d| matches!(st[d], Slot::Failed)) {
                            st[v] = Slot::Failed;
                            changed.notify_all();
                            return;
                        }
                        if my_deps.iter().all(|&d| matches!(st[d], Slot::Done(_))) {
                            break my_deps
                                .iter()
                                .map(|&d| match &st[d] {
                                    Slot::Done(o) => o.clone(),
                                    _ => unreachable!("all dependencies checked done"),
                                })
                                .collect::<Vec<_>>();
                        }
                        st = changed.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                };
                let result = worker.run(v, &inputs, cancel);
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok(o) => st[v] = Slot::Done(o),
                    Err(e) => {
                        st[v] = Slot::Failed;
                        let mut fe = first_error.lock().unwrap_or_else(|e| e.into_inner());
                        if fe.is_none() && !cancel.load(Ordering::SeqCst) {
                            *fe = Some((v, e));
                        }
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
                changed.notify_all();
            });
        }
    });
    if let Some((vertex, error)) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(ScheduleError::Failed { vertex, error });
    }
    let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(n);
    for (v, slot) in st.into_iter().enumerate() {
        match slot {
            Slot::Done(o) => out.push(Some(o)),
            Slot::Failed => return Err(ScheduleError::Cancelled),
            Slot::Pending if needed[v] => return Err(ScheduleError::Cancelled),
            Slot::Pending => out.push(None),
        }
    }
    Ok(out)
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

//! The scheduler: runs a DAG of vertices, each exactly once, every vertex started as soon
//! as its inputs are done, the first failure cancelling the rest.
//!
//! A pool of threads over a ready queue. A thread that finishes a vertex takes the next
//! ready one itself, so a chain of steps (and a cached build is mostly chains of lookups)
//! runs on one thread with no hand-off; a new thread is started only when more vertices
//! are ready than threads are idle, and at most [`MAX_THREADS`] exist, so a graph of any
//! size runs with bounded threads in time linear in its size. (A thread per vertex up
//! front ran out of threads at 20,000; a thread per ready vertex spent most of a cached
//! build starting threads and waking the scheduler.) Steps run on these plain threads,
//! not rayon's pool: blocking steps such as RUN would occupy its few threads. It knows
//! only indices and dependencies; what a vertex does is the [`Worker`]'s business.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Scope;

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
    let ready: VecDeque<usize> = (0..n).filter(|&v| needed[v] && waiting[v] == 0).collect();
    let state = State {
        ready,
        waiting,
        results: vec![None; n],
        first_error: None,
        busy: 0,
        idle: 0,
        starting: 0,
        threads: 1,
        over: false,
    };
    let pool = Pool { deps, dependents, worker, cancel, state: Mutex::new(state), wake: Condvar::new() };
    // The calling thread works too.
    std::thread::scope(|scope| pool.work(scope, false));
    let state = pool.state.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some((vertex, error)) = state.first_error {
        return Err(ScheduleError::Failed { vertex, error });
    }
    if (0..n).any(|v| needed[v] && state.results[v].is_none()) {
        return Err(ScheduleError::Cancelled);
    }
    Ok(state.results)
}

/// What the threads share, behind one lock.
struct State<O, E> {
    ready: VecDeque<usize>,
    /// Per vertex, how many of its inputs are not done yet.
    waiting: Vec<usize>,
    results: Vec<Option<O>>,
    first_error: Option<(usize, E)>,
    /// Vertices being run now.
    busy: usize,
    /// Threads waiting for a ready vertex.
    idle: usize,
    /// Threads started that have not yet taken the lock: they will take a ready vertex.
    starting: usize,
    threads: usize,
    /// Nothing more starts: all done, a failure, or `cancel`.
    over: bool,
}

struct Pool<'a, W: Worker> {
    deps: &'a [Vec<usize>],
    dependents: Vec<Vec<usize>>,
    worker: &'a W,
    cancel: &'a AtomicBool,
    state: Mutex<State<W::Output, W::Error>>,
    wake: Condvar,
}

impl<'a, W: Worker> Pool<'a, W> {
    fn lock(&self) -> MutexGuard<'_, State<W::Output, W::Error>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One thread's life: take a ready vertex, run it, note its result, until it is over.
    fn work<'s>(&'s self, scope: &'s Scope<'s, '_>, started: bool) {
        let mut st = self.lock();
        if started {
            st.starting -= 1;
        }
        loop {
            if !st.over && (self.cancel.load(Ordering::SeqCst) || (st.ready.is_empty() && st.busy == 0)) {
                st.over = true;
                self.wake.notify_all();
            }
            if st.over {
                return;
            }
            let Some(v) = st.ready.pop_front() else {
                st.idle += 1;
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                st.idle -= 1;
                continue;
            };
            let inputs: Vec<W::Output> =
                self.deps[v].iter().map(|&d| st.results[d].clone().expect("a dependency finished")).collect();
            st.busy += 1;
            // Every other ready vertex gets a thread now: an idle one, one starting, else a
            // new one.
            let spawn = st.ready.len().saturating_sub(st.idle + st.starting).min(MAX_THREADS - st.threads);
            st.threads += spawn;
            st.starting += spawn;
            drop(st);
            for _ in 0..spawn {
                scope.spawn(move || self.work(scope, true));
            }
            let unwinding = OnPanic(self);
            let r = self.worker.run(v, &inputs, self.cancel);
            std::mem::forget(unwinding);
            st = self.lock();
            st.busy -= 1;
            match r {
                Ok(o) => {
                    st.results[v] = Some(o);
                    for &d in &self.dependents[v] {
                        st.waiting[d] -= 1;
                        if st.waiting[d] == 0 {
                            st.ready.push_back(d);
                        }
                    }
                    // This thread takes one; the idle take the rest.
                    if st.ready.len() > 1 && st.idle > 0 {
                        self.wake.notify_all();
                    }
                }
                Err(e) => {
                    if st.first_error.is_none() && !self.cancel.load(Ordering::SeqCst) {
                        st.first_error = Some((v, e));
                    }
                    self.cancel.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Armed while a vertex runs: a panicking worker stops the schedule (instead of leaving the
/// other threads waiting for a vertex that never finishes); the scope re-raises the panic.
struct OnPanic<'p, 'a, W: Worker>(&'p Pool<'a, W>);

impl<W: Worker> Drop for OnPanic<'_, '_, W> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.over = true;
        self.0.cancel.store(true, Ordering::SeqCst);
        self.0.wake.notify_all();
    }
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

    struct Threads(Mutex<std::collections::HashSet<std::thread::ThreadId>>);
    impl Worker for Threads {
        type Output = usize;
        type Error = String;
        fn run(&self, v: usize, _: &[usize], _: &AtomicBool) -> Result<usize, String> {
            self.0.lock().unwrap().insert(std::thread::current().id());
            Ok(v)
        }
    }

    /// A chain runs on the calling thread alone (no hand-off per vertex), and a wide graph
    /// never has more than MAX_THREADS threads.
    #[test]
    fn chains_stay_on_one_thread_and_threads_are_bounded() {
        let chain: Vec<Vec<usize>> = (0..1000).map(|v| if v == 0 { vec![] } else { vec![v - 1] }).collect();
        let w = Threads(Mutex::new(Default::default()));
        run(&chain, &[true; 1000], &w, &AtomicBool::new(false)).unwrap();
        assert_eq!(*w.0.lock().unwrap(), [std::thread::current().id()].into_iter().collect());
        let flat: Vec<Vec<usize>> = vec![vec![]; 5000];
        let w = Threads(Mutex::new(Default::default()));
        run(&flat, &[true; 5000], &w, &AtomicBool::new(false)).unwrap();
        let n = w.0.lock().unwrap().len();
        assert!((1..=MAX_THREADS).contains(&n), "{n} threads");
    }

    struct Panics;
    impl Worker for Panics {
        type Output = usize;
        type Error = String;
        fn run(&self, v: usize, _: &[usize], cancel: &AtomicBool) -> Result<usize, String> {
            if v == 1 {
                panic!("vertex 1 panics");
            }
            // The others wait to be cancelled, as a long RUN would.
            while !cancel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err("cancelled".into())
        }
    }

    /// A panicking vertex cancels the others and the panic reaches the caller: no thread is
    /// left waiting for the vertex that never finished.
    #[test]
    fn a_panicking_vertex_stops_the_schedule() {
        let deps = vec![vec![], vec![], vec![], vec![0, 1, 2]];
        let r = std::panic::catch_unwind(|| run(&deps, &[true; 4], &Panics, &AtomicBool::new(false)));
        assert!(r.is_err(), "the panic is raised again");
    }
}

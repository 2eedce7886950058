//! The engine on an in-memory cache index and fake ops (no root, no filesystem): the key
//! rule, early cutoff, permits, cancellation and first-failure-cancels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_ir::*;

use super::*;
use crate::solve::backend::{BackendError, CacheIndex, CacheKey, Chain};
use crate::solve::graph::Graph;
use crate::solve::hash::Hash;
use crate::solve::progress::{Event, Progress};
use crate::solve::scheduler::{self, ScheduleError, Semaphore};

#[derive(Default)]
struct MemCache(Mutex<HashMap<CacheKey, Vec<Chain>>>);

impl CacheIndex for MemCache {
    fn get(&self, key: &CacheKey) -> Result<Option<Vec<Chain>>, BackendError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn put(&self, key: &CacheKey, chains: &[Chain]) -> Result<(), BackendError> {
        self.0.lock().unwrap().insert(*key, chains.to_vec());
        Ok(())
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Progress for Events {
    fn event(&self, ev: Event) {
        self.0.lock().unwrap().push(ev);
    }
}

/// How a fake step reads input 0 and what it produces.
#[derive(Clone)]
struct Behave {
    /// `true`: through its key; `false`: through the content of its whole tree.
    by_key: bool,
    permit: bool,
    content: String,
    sleep: Duration,
    fail: bool,
}

fn step(by_key: bool, content: &str) -> Behave {
    Behave { by_key, permit: false, content: content.into(), sleep: Duration::ZERO, fail: false }
}

/// Fake ops: every non-source vertex is a step that adds one layer holding `content`.
#[derive(Default)]
struct Fake {
    behave: HashMap<usize, Behave>,
    contents: Mutex<HashMap<String, String>>,
    seq: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    ran: Mutex<Vec<usize>>,
}

impl Ops for Fake {
    fn plan<'s>(&'s self, v: usize, inputs: &'s Inputs<'s>, cancel: &'s AtomicBool) -> Result<Plan<'s>, StepError> {
        let Some(b) = self.behave.get(&v) else {
            let key = crate::solve::key::leaf_key("scratch", "");
            return Ok(Plan::Ready(Done { outputs: vec![Tree::Layers(Arc::new(vec![]))], keys: vec![key] }));
        };
        let read = if b.by_key { Read::Key } else { Read::Tree("/") };
        let map = CacheMap { reads: vec![(0, read)], extra: None };
        let exec = move |_: &StepCx| {
            self.ran.lock().unwrap().push(v);
            let r = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(r, Ordering::SeqCst);
            let start = Instant::now();
            while start.elapsed() < b.sleep {
                if cancel.load(Ordering::SeqCst) {
                    self.running.fetch_sub(1, Ordering::SeqCst);
                    return Err(StepError::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            if b.fail {
                return Err(StepError::msg(format!("vertex {v} failed")));
            }
            let id = format!("l{}", self.seq.fetch_add(1, Ordering::SeqCst));
            self.contents.lock().unwrap().insert(id.clone(), b.content.clone());
            let Tree::Layers(base) = inputs.tree(0)? else { unreachable!("fakes only have layers") };
            let mut chain = base.to_vec();
            chain.push(id);
            Ok(vec![chain])
        };
        Ok(Plan::Step { map, permit: b.permit, exec: Box::new(exec) })
    }

    fn content(&self, tree: &Tree, _read: &Read) -> Result<Hash, StepError> {
        let Tree::Layers(chain) = tree else { unreachable!("fakes only have layers") };
        let contents = self.contents.lock().unwrap();
        let mut h = blake3::Hasher::new();
        for l in chain.iter() {
            h.update(contents[l].as_bytes());
            h.update(b"\0");
        }
        Ok(*h.finalize().as_bytes())
    }

    fn usable(&self, _: &[Chain]) -> bool {
        true
    }
}

/// A Definition: a scratch source (vertex 0) and one mkfile vertex per `(input, data)`.
fn def(steps: &[(usize, &str)], ignore_cache: &[usize]) -> Definition {
    let mut d = Definition { version: FORMAT_VERSION, vertices: vec![], outputs: vec![], sources: vec![] };
    let mut push = |inputs: Vec<Input>, op: Op| {
        let vertex = Vertex { inputs, op };
        let digest = vertex_digest(&vertex);
        let meta = VertexMeta { ignore_cache: ignore_cache.contains(&d.vertices.len()), ..Default::default() };
        d.vertices.push(VertexEntry { digest, vertex, meta });
        Input { digest, index: 0 }
    };
    let mut made = vec![push(vec![], Op::Source(SourceOp::Scratch))];
    for (input, data) in steps {
        let kind = FileActionKind::Mkfile {
            path: "/f".into(),
            mode: 0o644,
            data: data.as_bytes().to_vec(),
            owner: None,
            timestamp: None,
        };
        let op = Op::File(FileOp { actions: vec![FileAction { base: FileRef::Input(0), kind }] });
        made.push(push(vec![made[*input]], op));
    }
    let root = *made.last().unwrap();
    let config = ImageConfig::default();
    d.outputs = vec![Output { platform: Platform::host(), root, config }];
    d
}

struct Run {
    results: Result<Vec<Option<Done>>, ScheduleError<VertexError>>,
    events: Vec<Event>,
    executed: usize,
    cached: usize,
}

fn run(d: &Definition, ops: &Fake, cache: &MemCache, jobs: usize, cancel: &AtomicBool) -> Run {
    let graph = Graph::new(d).unwrap();
    let events = Events::default();
    let platform = Platform::host();
    let engine = Engine {
        graph: &graph,
        cache,
        ops,
        progress: &events,
        platform: &platform,
        no_cache: false,
        permits: Semaphore::new(jobs),
        steps: &AtomicUsize::new(0),
        executed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        records: None,
        dry_run: None,
    };
    let results = scheduler::run(&graph.deps, &vec![true; d.vertices.len()], &engine, cancel);
    let (executed, cached) = (engine.executed.load(Ordering::SeqCst), engine.cached.load(Ordering::SeqCst));
    Run { results, events: events.0.into_inner().unwrap(), executed, cached }
}

fn key_of(r: &Run, v: usize) -> CacheKey {
    r.results.as_ref().ok().unwrap()[v].as_ref().unwrap().keys[0]
}

#[test]
fn keys_come_from_inputs_and_content_reads_cut_off_early() {
    let cache = MemCache::default();
    let no = AtomicBool::new(false);
    // 1 reads the scratch by key; 2 reads 1 by content; 3 reads 1 by key.
    let mut ops = Fake::default();
    ops.behave.insert(1, step(true, "one"));
    ops.behave.insert(2, step(false, "two"));
    ops.behave.insert(3, step(true, "three"));
    let d = def(&[(0, "a"), (1, "b"), (1, "c")], &[]);
    let first = run(&d, &ops, &cache, 4, &no);
    assert_eq!((first.executed, first.cached), (3, 0));
    let again = run(&d, &ops, &cache, 4, &no);
    assert_eq!((again.executed, again.cached), (0, 3), "same inputs, same keys: all cached");
    assert_eq!(key_of(&first, 2), key_of(&again, 2));

    // Vertex 1 re-runs (ignore_cache) and produces the same content: its content reader
    // stays cached (early cutoff); its key reader too, since 1's key did not change.
    let d1 = def(&[(0, "a"), (1, "b"), (1, "c")], &[1]);
    ops.contents.lock().unwrap().clear();
    let r = run(&d1, &ops, &cache, 4, &no);
    let ran = ops.ran.lock().unwrap().clone();
    let mut first_two = ran[1..3].to_vec();
    first_two.sort();
    assert_eq!((ran[0], first_two, &ran[3..]), (1, vec![2, 3], &[1][..]), "only vertex 1 ran again");
    assert_eq!((r.executed, r.cached), (1, 2));

    // Vertex 1 now produces other content under the same key: the content reader runs,
    // the key reader stays cached.
    ops.behave.insert(1, step(true, "ONE"));
    let r = run(&d1, &ops, &cache, 4, &no);
    assert_eq!(ops.ran.lock().unwrap()[4..], [1, 2]);
    assert_eq!((r.executed, r.cached), (2, 1));

    // Changing vertex 1's op changes its key and so every key reader's.
    let d2 = def(&[(0, "A"), (1, "b"), (1, "c")], &[]);
    let r = run(&d2, &ops, &cache, 4, &no);
    assert_ne!(key_of(&r, 1), key_of(&first, 1));
    assert_ne!(key_of(&r, 3), key_of(&first, 3));
    let starts = r.events.iter().filter(|e| matches!(e, Event::Start { .. })).count();
    assert_eq!(starts, 3, "every step shows once");
}

#[test]
fn permits_bound_process_steps_only() {
    let no = AtomicBool::new(false);
    let sleepy = |permit: bool, c: &str| Behave { permit, sleep: Duration::from_millis(60), ..step(true, c) };
    for (permit, want) in [(true, 1), (false, 4)] {
        let cache = MemCache::default();
        let mut ops = Fake::default();
        for v in 1..=4 {
            ops.behave.insert(v, sleepy(permit, &v.to_string()));
        }
        let d = def(&[(0, "1"), (0, "2"), (0, "3"), (0, "4")], &[]);
        let r = run(&d, &ops, &cache, 1, &no);
        assert!(r.results.is_ok());
        assert_eq!(ops.max_running.load(Ordering::SeqCst), want, "permit={permit}");
    }
}

#[test]
fn first_failure_cancels_the_rest_with_its_step_number() {
    let cache = MemCache::default();
    let no = AtomicBool::new(false);
    let mut ops = Fake::default();
    ops.behave.insert(1, Behave { fail: true, sleep: Duration::from_millis(20), ..step(true, "x") });
    ops.behave.insert(2, Behave { sleep: Duration::from_secs(30), ..step(true, "y") });
    ops.behave.insert(3, step(true, "z"));
    let d = def(&[(0, "a"), (0, "b"), (1, "c")], &[]);
    let started = Instant::now();
    let r = run(&d, &ops, &cache, 4, &no);
    assert!(started.elapsed() < Duration::from_secs(20), "the sleeper was cancelled");
    match r.results {
        Err(ScheduleError::Failed { vertex: 1, error }) => {
            assert!(matches!(&error.error, StepError::Failed { message, .. } if message == "vertex 1 failed"));
            let id = error.step.expect("the failed step has a number");
            assert!(r.events.iter().any(|e| matches!(e, Event::Error { id: i, .. } if *i == id)));
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    assert!(!ops.ran.lock().unwrap().contains(&3), "a dependent of the failure never runs");
}

#[test]
fn cancellation_while_waiting_for_a_permit_is_cancelled_not_a_failure() {
    let cache = MemCache::default();
    let mut ops = Fake::default();
    ops.behave.insert(1, Behave { permit: true, ..step(true, "x") });
    let d = def(&[(0, "a")], &[]);
    let cancel = AtomicBool::new(false);
    let graph = Graph::new(&d).unwrap();
    let platform = Platform::host();
    let events = Events::default();
    let engine = Engine {
        graph: &graph,
        cache: &cache,
        ops: &ops,
        progress: &events,
        platform: &platform,
        no_cache: false,
        permits: Semaphore::new(1),
        steps: &AtomicUsize::new(0),
        executed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        records: None,
        dry_run: None,
    };
    // Someone else holds the only permit; then the build is cancelled.
    let held = engine.permits.acquire(&cancel).unwrap();
    let scratch = engine.run_vertex(0, &[], &cancel).ok().unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| engine.run_vertex(1, std::slice::from_ref(&scratch), &cancel));
        std::thread::sleep(Duration::from_millis(50));
        cancel.store(true, Ordering::SeqCst);
        let e = h.join().unwrap().unwrap_err();
        assert!(matches!(e.error, StepError::Cancelled));
        assert_eq!(e.step, None, "a step that never started has no number");
    });
    drop(held);
    assert!(ops.ran.lock().unwrap().is_empty());
}

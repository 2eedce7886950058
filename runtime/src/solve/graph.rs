//! A [`Definition`] validated once, with the indices the scheduler and the ops need: the
//! vertex of each digest, each vertex's distinct dependencies, and where each input's value
//! sits among them. Once a [`Graph`] exists nothing below indexes the Definition blindly.

use std::collections::HashMap;

use cairn_ir::{Definition, Digest, LoadError};

/// A validated Definition (SPEC.md's structural rules hold: see [`cairn_ir::validate`]).
pub struct Graph<'a> {
    pub def: &'a Definition,
    index: HashMap<Digest, usize>,
    /// For each vertex, the distinct vertices it reads, in first-use order.
    pub deps: Vec<Vec<usize>>,
    /// For each vertex and each of its inputs: (position in `deps`, output index).
    pub input_at: Vec<Vec<(usize, u32)>>,
}

impl<'a> Graph<'a> {
    pub fn new(def: &'a Definition) -> Result<Graph<'a>, LoadError> {
        cairn_ir::validate(def)?;
        let index: HashMap<Digest, usize> = def.vertices.iter().enumerate().map(|(i, v)| (v.digest, i)).collect();
        let mut deps = Vec::with_capacity(def.vertices.len());
        let mut input_at = Vec::with_capacity(def.vertices.len());
        for v in &def.vertices {
            let mut d: Vec<usize> = Vec::new();
            let mut at = Vec::with_capacity(v.vertex.inputs.len());
            for inp in &v.vertex.inputs {
                // Validation guarantees every input names an earlier vertex.
                let p = index[&inp.digest];
                let pos = match d.iter().position(|&x| x == p) {
                    Some(pos) => pos,
                    None => {
                        d.push(p);
                        d.len() - 1
                    }
                };
                at.push((pos, inp.index));
            }
            deps.push(d);
            input_at.push(at);
        }
        Ok(Graph { def, index, deps, input_at })
    }

    /// The vertex with `digest`.
    pub fn vertex_of(&self, digest: &Digest) -> Option<usize> {
        self.index.get(digest).copied()
    }

    /// Which vertices `root` needs (itself included).
    pub fn needed(&self, root: usize) -> Vec<bool> {
        let mut needed = vec![false; self.deps.len()];
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            if !needed[v] {
                needed[v] = true;
                stack.extend(&self.deps[v]);
            }
        }
        needed
    }
}

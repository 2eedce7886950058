//! Merge and Diff: chain arithmetic on layer chains, computed on the spot (no step, no
//! cache record; their keys follow SPEC.md §6 from their inputs' keys).

use super::OpCx;
use crate::solve::backend::Backend;
use crate::solve::engine::{CacheMap, Inputs, Plan, Read, StepError, Tree};

impl<B: Backend> OpCx<'_, B> {
    pub(super) fn merge<'s>(&'s self, v: usize, inputs: &Inputs) -> Result<Plan<'s>, StepError> {
        let n = self.graph.def.vertices[v].vertex.inputs.len() as u32;
        let mut chain = Vec::new();
        for i in 0..n {
            chain.extend(Self::chain_of(inputs.tree(i)?, "Merging a build context directly is not supported")?);
        }
        let map = CacheMap { reads: (0..n).map(|i| (i, Read::Key)).collect(), extra: None };
        Ok(Plan::Computed { map, chain })
    }

    pub(super) fn diff<'s>(&'s self, inputs: &Inputs) -> Result<Plan<'s>, StepError> {
        let (lower, upper) = (inputs.tree(0)?, inputs.tree(1)?);
        let (Tree::Layers(l), Tree::Layers(u)) = (lower, upper) else {
            return Err(StepError::msg("A diff of a build context is not supported"));
        };
        if l.len() > u.len() || u[..l.len()] != l[..] {
            return Err(StepError::msg(
                "A diff whose lower layers are not a prefix of its upper layers is not supported",
            ));
        }
        let map = CacheMap { reads: vec![(0, Read::Key), (1, Read::Key)], extra: None };
        Ok(Plan::Computed { map, chain: u[l.len()..].to_vec() })
    }
}

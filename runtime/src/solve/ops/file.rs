//! File ops: the actions run in order on an overlay of the base chain mounted in the host
//! namespace (or straight in the new layer over scratch); the result is the base chain plus
//! one layer. An input read as a copy source enters the key by the content it selects only.

use std::fs;

use cairn_ir::{FileActionKind, FileOp, FileRef};

use super::OpCx;
use crate::solve::backend::{Backend, Chain, Scratch};
use crate::solve::engine::{fail, CacheMap, Inputs, Plan, Read, StepCx, StepError, Tree};
use crate::solve::fileop;

impl<B: Backend> OpCx<'_, B> {
    pub(super) fn file<'s>(&'s self, v: usize, f: &'s FileOp, inputs: &'s Inputs<'s>) -> Result<Plan<'s>, StepError> {
        let n = self.graph.def.vertices[v].vertex.inputs.len() as u32;
        let mut map = CacheMap::default();
        for i in 0..n {
            if f.actions.iter().any(|a| a.base == FileRef::Input(i)) {
                map.reads.push((i, Read::Key));
            }
            for a in &f.actions {
                if let FileActionKind::Copy(c) = &a.kind {
                    if c.src == FileRef::Input(i) {
                        map.reads.push((i, Read::Selection(c)));
                    }
                }
            }
        }
        Ok(Plan::Step { map, permit: false, exec: Box::new(move |cx| self.run_file(f, inputs, cx).map(|c| vec![c])) })
    }

    fn run_file(&self, f: &FileOp, inputs: &Inputs, cx: &StepCx) -> Result<Chain, StepError> {
        let base_chain: Chain = match f.actions[0].base {
            FileRef::Scratch => Vec::new(),
            FileRef::Input(i) => Self::chain_of(inputs.tree(i)?, "File actions cannot modify a build context")?,
            FileRef::Action(_) => return Err(StepError::msg("The first file action cannot read an action")),
        };
        for (k, a) in f.actions.iter().enumerate().skip(1) {
            if a.base != FileRef::Action(k as u32 - 1) {
                return Err(StepError::msg(
                    "File actions that do not each build on the previous one are not supported",
                ));
            }
        }
        let nl = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        {
            let (work_root, mount, mountpoint) = if base_chain.is_empty() {
                (nl.upper().to_path_buf(), None, None)
            } else {
                let mp = self.mountpoint()?;
                let m = self
                    .backend
                    .mount_overlay(&self.lowers(&base_chain)?, Some((nl.upper(), nl.work())), &mp)
                    .map_err(fail("Cannot mount the base layers"))?;
                (mp.clone(), Some(m), Some(mp))
            };
            let result = (|| {
                for a in &f.actions {
                    match &a.kind {
                        FileActionKind::Copy(c) => {
                            let empty = Tree::Layers(Default::default());
                            let tree = match c.src {
                                FileRef::Scratch => &empty,
                                FileRef::Input(i) => inputs.tree(i)?,
                                FileRef::Action(_) => {
                                    return Err(StepError::msg(
                                        "Copying from an earlier action's result is not supported",
                                    ))
                                }
                            };
                            let view = self.view(tree)?;
                            let src = super::src_tree(&view.path, tree);
                            let warnings =
                                fileop::copy(&work_root, &src, c).map_err(|e| StepError::msg(e.to_string()))?;
                            warnings.into_iter().for_each(|w| cx.log(format!("warning: {w}")));
                        }
                        other => fileop::apply(&work_root, other).map_err(|e| StepError::msg(e.to_string()))?,
                    }
                }
                Ok(())
            })();
            drop(mount);
            if let Some(mp) = mountpoint {
                let _ = fs::remove_dir(mp);
            }
            result?;
        }
        let mut chain = base_chain;
        chain.push(self.backend.commit_layer(nl).map_err(fail("Cannot commit the layer"))?);
        Ok(chain)
    }
}

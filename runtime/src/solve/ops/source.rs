//! Sources that need no network: scratch, build contexts (read in place, seen through the
//! IR's include/exclude patterns only), and images of the [`Images`] backend.
//!
//! The runtime never treats a source name as special: the frontend puts `.dockerignore`'s
//! patterns into the `Local` source's `exclude` (SPEC.md §7.1), and only those count.
//!
//! [`Images`]: crate::solve::backend::Images

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cairn_ir::SourceOp;

use super::OpCx;
use crate::solve::backend::Backend;
use crate::solve::engine::{Done, LocalTree, Plan, SourceKey, StepError, Tree};
use crate::solve::key;
use crate::solve::pattern::Filter;

impl<B: Backend> OpCx<'_, B> {
    pub(super) fn source<'s>(
        &'s self,
        v: usize,
        s: &'s SourceOp,
        cancel: &'s AtomicBool,
    ) -> Result<Plan<'s>, StepError> {
        match s {
            SourceOp::Scratch => Ok(Plan::Ready(Done {
                outputs: vec![Tree::Layers(Arc::new(Vec::new()))],
                keys: vec![key::leaf_key("scratch", "")],
            })),
            SourceOp::Local { name, include, exclude } => {
                let root = self.opts.contexts.get(name).ok_or_else(|| {
                    StepError::msg(format!("Build context `{name}` was not given (use `--build-context {name}=DIR`)"))
                })?;
                let filter = Filter::new(include, exclude)
                    .map_err(|e| StepError::msg(format!("Build context `{name}`: {e}")))?;
                let tree = LocalTree { name: name.clone(), root: root.clone(), filter };
                // A context has no key of its own: consumers key on what they read of it.
                Ok(Plan::Ready(Done {
                    outputs: vec![Tree::Local(Arc::new(tree))],
                    keys: vec![crate::solve::backend::CacheKey([0; 32])],
                }))
            }
            SourceOp::Image { reference, platform: image_platform } => Ok(Plan::Source {
                key: Box::new(move || {
                    let img = match self.backend.image(reference, image_platform) {
                        Ok(Some(img)) => img,
                        Ok(None) => return Err(StepError::msg(format!(
                            "Image `{reference}` is not in the local store and no registry was asked (build it with `cairn build -t`, import it with `cairn load -i FILE`, or pull it)"
                        ))),
                        Err(e) => return Err(StepError::msg(format!("Cannot get image `{reference}`: {e}"))),
                    };
                    let key = key::leaf_key("image", &img.manifest_digest.to_string());
                    Ok(SourceKey::Known { key, chains: vec![img.layers], manifest: img.manifest_digest })
                }),
                exec: None,
            }),
            SourceOp::Http { url, checksum, filename, mode } => {
                Ok(self.http_source(v, url, checksum.as_ref(), filename, *mode, cancel))
            }
            SourceOp::Git { remote, reference, subdir, keep_git_dir } => {
                Ok(self.git_source(remote, reference, subdir, *keep_git_dir, cancel))
            }
        }
    }
}

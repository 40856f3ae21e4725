"""Long2short (paper section 2.4): move a long-CoT model's accuracy into fewer tokens.

"Though long-CoT models achieve strong performance, [they] consume more test-time tokens ... we
explore approaches to transfer the thinking priors from long-CoT models to short-CoT models."
The four methods, each a library function and a ``k15ray`` command:

========================== ============================================= =========================
method                     here                                          command
========================== ============================================= =========================
model merging              ``merge.merge_models``: weight averaging      ``k15ray merge A B --out C``
shortest rejection samp.   ``rejection.rejection_sample`` then SFT       ``k15ray rejection-sample``
DPO                        ``dpo.dpo_loss``, ``dpo_trainer.train_dpo``   ``k15ray dpo CONFIG``
long2short RL              K15 with the length penalty from iteration 0  ``k15ray train
                           and a smaller maximum response length         configs/long2short.yaml``
========================== ============================================= =========================

The choice of samples is pure (``selection``); drawing them goes through the Ray rollout actors
(``sampling``). The long-CoT and short solution styles of the generated task are in
``k15ray.tasks.styles``; the benchmark comparing all of them is ``bench/long2short.py``
(docs/long2short.md).
"""

from k15ray.long2short.dpo import dpo_loss
from k15ray.long2short.selection import Sample, preference_pairs, shortest_correct

__all__ = ["Sample", "dpo_loss", "preference_pairs", "shortest_correct"]

"""Train-time use of process rewards: pure tensor math for RL with outcome and process rewards.

* `advantages` — group baselines (GRPO, RLOO), discounted reward-to-go, batch whitening, PRIME's
  combined outcome + implicit-process advantage, PURE's min-form credit assignment and token baseline.
* `losses` — PPO clipped surrogate (with optional asymmetric "clip-higher"), Schulman's KL
  estimators k1/k2/k3, masked means.
* `shaping` — process-reward shaping and guard rails: PAV effective reward, PROF consistency filter,
  Posterior-GRPO gate, ReNorm, Clip/Delta (Gao et al. 2024), PAR, CAPO votes, a Trust-GRPO trust
  weight, coefficient annealing and seeded reward noise.

These three are pure functions of tensors (no models, no I/O), shape-documented with
B batch, T tokens, S steps, G group size; `*_mask` tensors are bool (True = real position).
Padded positions never change a result: they are excluded from every sum and set to 0 in every output.

The procedures built on them:
* `rollout` — `RolloutBatch`, one step's responses as tensors with a shape on every field; sampling,
  grading and step scoring of a step's batch; the seeds of every draw.
* `config` — `RLConfig` (`prmkit rl`'s options), their checks, the frozen reward model spec.
* `methods` — the advantage methods (`--reward`): `@advantage_method` registers a pure recipe whose
  parameters name what it reads (`ADVANTAGES`); `compute_advantages` runs one on a batch.
* `lifecycle` — what every RL run shares (also `prmkit agent rl`): PPO-clip minibatch updates, the
  evaluation schedule, checkpoint state and metrics on resume.
* `trainer` — `prmkit rl`: `RLRun` (rollout, advantages, PPO-clip updates, held-out evaluation,
  checkpoints/resume, JSONL + TensorBoard metrics).
* `prime` — PRIME's accuracy filter and online implicit PRM.
* `monitors` — reward-hacking monitors and drift warnings.
* `compare` — `prmkit rl-compare`: methods x seeds, curves, table, HTML report.
"""

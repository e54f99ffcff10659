namespace Vae.Core

open TorchSharp

/// The optimiser of a run: Adagrad as the paper's code uses it (section 5), or Adam under a step-size schedule (Burda
/// et al. 2015).
type OptimizerConfig =
    | AdagradOptimizer of AdagradConfig
    | AdamOptimizer of AdamConfig
    /// The configured (base) step size.
    member o.StepSize = match o with AdagradOptimizer a -> a.StepSize | AdamOptimizer a -> a.StepSize

[<RequireQualifiedAccess>]
module Optimizer =

    /// The paper's Adagrad with the given step size (chosen from {0.01, 0.02, 0.1}).
    let paper (stepSize: float) = AdagradOptimizer(Adagrad.paper stepSize)

    /// Adagrad's settings, for the steps that only Adagrad drives (the fused steps, wake-sleep's per-tensor settings);
    /// raises ArgumentException for Adam, naming the setting.
    let adagrad (o: OptimizerConfig) : AdagradConfig =
        match o with
        | AdagradOptimizer a -> a
        | AdamOptimizer _ -> invalidArg "Optimizer" "this step is written for Adagrad; with Adam choose the autograd gradient"

    /// A zero state for the parameters: Adagrad's sums, or Adam's two moments.
    let init (o: OptimizerConfig) (parameters: Tensor[]) : OptimizerState =
        match o with
        | AdagradOptimizer _ -> Adagrad.init parameters
        | AdamOptimizer a -> Adam.initFor a parameters

    /// The name a checkpoint and options.txt record.
    let name = function AdagradOptimizer _ -> "adagrad" | AdamOptimizer _ -> "adam"

    /// One ascent step, in place. passes is how many passes over the training set the steps before this one made
    /// (Adam's schedule reads it; Adagrad's step size is constant).
    let ascend (o: OptimizerConfig) (passes: float) (s: OptimizerState) (parameters: Tensor[]) (gradients: Tensor[]) : OptimizerState =
        match o with
        | AdagradOptimizer a -> Adagrad.ascend a s parameters gradients
        | AdamOptimizer a -> Adam.ascend a (a.StepSize * StepSizeSchedule.factor a.Schedule passes) s parameters gradients

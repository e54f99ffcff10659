namespace Vae.Core

open TorchSharp

/// An optimiser's state: accumulators per tensor it updates and the steps taken. Adagrad keeps its sums of squared
/// gradients in SumSquares (one per parameter tensor, or one for a model's whole parameter vector in the fused steps)
/// and no FirstMoments; Adam keeps its moving averages of squared gradients in SumSquares and of gradients in
/// FirstMoments (Adam.init).
type OptimizerState = { SumSquares: Tensor[]; FirstMoments: Tensor[]; Steps: int64 }

[<RequireQualifiedAccess>]
module OptimizerState =

    /// Zero accumulators shaped like the parameters, no first moments, no steps.
    let zeros (parameters: Tensor[]) : OptimizerState =
        { SumSquares = parameters |> Array.map (fun p -> torch.zeros_like(p)); FirstMoments = [||]; Steps = 0L }

    /// The state of the tensors [first, first + count) of those s covers (the same accumulators, not copies; the same
    /// step count): a learner that updates its networks in separate calls (wake-sleep, Monte Carlo EM's decoder).
    let slice (first: int) (count: int) (s: OptimizerState) : OptimizerState =
        { s with
            SumSquares = Array.sub s.SumSquares first count
            FirstMoments = if s.FirstMoments.Length = 0 then [||] else Array.sub s.FirstMoments first count }

    /// Frees the accumulators' native memory.
    let dispose (s: OptimizerState) =
        for t in s.SumSquares do t.Dispose()
        for t in s.FirstMoments do t.Dispose()

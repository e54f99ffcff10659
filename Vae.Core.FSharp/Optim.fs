namespace Vae.Core

open TorchSharp

/// Adagrad as the paper's code uses it (section 5): a global step size eta; squared gradients
/// accumulate from the first minibatch, and updates start after WarmUp + 1 minibatches;
/// theta <- theta + eta g / sqrt(G + Regulariser) (gradient ascent).
type AdagradConfig =
    { StepSize: float
      /// Minibatches whose squared gradients are accumulated before the first update (the paper: 100).
      WarmUp: int
      /// Added to the accumulated squares under the root (the paper: 1e-8).
      Regulariser: float }

/// Adagrad's state: the accumulated squared gradient of every parameter and the steps taken.
type AdagradState = { SumSquares: Tensor[]; Steps: int64 }

[<RequireQualifiedAccess>]
module Adagrad =

    /// The paper's settings with the given global step size (chosen from {0.01, 0.02, 0.1}).
    let paper (stepSize: float) = { StepSize = stepSize; WarmUp = 100; Regulariser = 1e-8 }

    /// Zero accumulators shaped like the parameters.
    let init (parameters: Tensor[]) : AdagradState =
        { SumSquares = parameters |> Array.map (fun p -> torch.zeros_like(p)); Steps = 0L }

    /// One ascent step, in place on the parameters and accumulators. As in the paper's code
    /// (`if nsteps > warmup`), the first update is made at 0-based step WarmUp + 1.
    let ascend (c: AdagradConfig) (s: AdagradState) (parameters: Tensor[]) (gradients: Tensor[]) : AdagradState =
        use _ = torch.no_grad ()
        let update = s.Steps > int64 c.WarmUp
        for i in 0 .. parameters.Length - 1 do
            let g = gradients.[i]
            s.SumSquares.[i].addcmul_(g, g, Torch.scalar 1.0) |> ignore
            if update then
                use denom = (s.SumSquares.[i] + c.Regulariser).sqrt_()
                parameters.[i].addcdiv_(g, denom, Torch.scalar c.StepSize) |> ignore
        { s with Steps = s.Steps + 1L }

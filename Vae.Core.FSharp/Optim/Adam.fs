namespace Vae.Core

open TorchSharp

/// How Adam's step size changes over training, in passes over the training set.
type StepSizeSchedule =
    /// The configured step size throughout.
    | ConstantStepSize
    /// Burda et al. (2015), section 5: stage i = 0, ..., 7 runs 3^i passes at the step size times 10^(-i/7), 3280
    /// passes in all, rounded as their code rounds it (experiments.py:119, 1e-4 round(10^(1 - i/7), 1) for a step size
    /// of 1e-3): 1, 0.72, 0.52, 0.37, 0.27, 0.19, 0.14 and 0.1 times it. After the last stage its rate continues.
    | BurdaStages

/// Which update Adam makes: Kingma & Ba's, or the one Burda et al.'s code runs.
type AdamVariant =
    /// Kingma & Ba (2015), Algorithm 1: both moments start at zero and step t moves by the moments that include its
    /// gradient.
    | KingmaBa
    /// Burda et al.'s code (yburda/iwae, optimizers.py:16-33): the second moments start at 1, and Theano applies the
    /// updates at once, so step t moves by the moments of the t - 1 gradients before it with step t's bias corrections;
    /// the first step moves nothing.
    | BurdaCode

/// Adam's settings (Kingma & Ba 2015). Burda et al. (2015) train with step size 0.001 under their schedule, beta1 =
/// 0.9, beta2 = 0.999 and epsilon = 1e-4.
type AdamConfig =
    { StepSize: float
      /// Decay of the moving average of gradients.
      Beta1: float
      /// Decay of the moving average of squared gradients.
      Beta2: float
      /// Added to the root of the squared gradients' average.
      Epsilon: float
      Schedule: StepSizeSchedule
      /// Kingma & Ba's update, or Burda et al.'s code's.
      Variant: AdamVariant }

[<RequireQualifiedAccess>]
module StepSizeSchedule =

    /// Burda et al.'s stage factors, stage 0 first.
    let burdaFactors = [| 1.0; 0.72; 0.52; 0.37; 0.27; 0.19; 0.14; 0.1 |]

    /// The passes of Burda et al.'s schedule: 3^0 + ... + 3^7 = 3280.
    let burdaPasses = 3280

    /// The factor of the step size once the given passes over the training set are done (fractional passes: steps times
    /// M over N). Burda's stage i covers passes [(3^i - 1) / 2, (3^(i+1) - 1) / 2).
    let factor (schedule: StepSizeSchedule) (passes: float) : float =
        match schedule with
        | ConstantStepSize -> 1.0
        | BurdaStages ->
            let mutable stage = 0
            while stage < burdaFactors.Length - 1 && passes >= (3.0 ** float (stage + 1) - 1.0) / 2.0 do stage <- stage + 1
            burdaFactors.[stage]

    /// The name a checkpoint and options.txt record.
    let name = function ConstantStepSize -> "constant" | BurdaStages -> "burda"

[<RequireQualifiedAccess>]
module AdamVariant =

    /// The name a checkpoint records.
    let name = function KingmaBa -> "kingma-ba" | BurdaCode -> "burda-code"

    /// The variant a checkpoint names, or None.
    let tryParse = function "kingma-ba" -> Some KingmaBa | "burda-code" -> Some BurdaCode | _ -> None

/// Adam (Kingma & Ba 2015, Algorithm 1 with the bias corrections in the step size, as their section 2 allows) as
/// gradient ascent: at step t = 1, 2, ..., m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2 and
/// theta <- theta + eta sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt v + epsilon). v lives in OptimizerState.SumSquares and m
/// in FirstMoments. Burda et al.'s code's variant (BurdaCode) starts v at 1 and moves theta before updating m and v.
[<RequireQualifiedAccess>]
module Adam =

    /// Burda et al.'s settings (section 5) with the given step size and schedule.
    let burda (stepSize: float) (schedule: StepSizeSchedule) : AdamConfig =
        { StepSize = stepSize; Beta1 = 0.9; Beta2 = 0.999; Epsilon = 1e-4; Schedule = schedule; Variant = KingmaBa }

    /// Zero moments shaped like the parameters (Kingma & Ba's start).
    let init (parameters: Tensor[]) : OptimizerState =
        { OptimizerState.zeros parameters with FirstMoments = parameters |> Array.map (fun p -> torch.zeros_like(p)) }

    /// The moments the variant starts from: zero, or (BurdaCode) first moments zero and second moments one.
    let initFor (c: AdamConfig) (parameters: Tensor[]) : OptimizerState =
        let s = init parameters
        match c.Variant with
        | KingmaBa -> s
        | BurdaCode ->
            use _ = torch.no_grad ()
            for v in s.SumSquares do v.fill_(Torch.one) |> ignore
            s

    /// One ascent step with step size eta (the schedule's for this step), in place on the parameters and moments.
    let ascend (c: AdamConfig) (eta: float) (s: OptimizerState) (parameters: Tensor[]) (gradients: Tensor[]) : OptimizerState =
        use _ = torch.no_grad ()
        if s.FirstMoments.Length <> parameters.Length || s.SumSquares.Length <> parameters.Length || gradients.Length <> parameters.Length then
            invalidArg "s" (sprintf "%d parameter tensors, %d gradients, %d first and %d second moments; expected one of each per tensor (Adam.init)"
                                parameters.Length gradients.Length s.FirstMoments.Length s.SumSquares.Length)
        let t = float (s.Steps + 1L)
        // The step size with both bias corrections, a number that changes every step: its Scalar is freed after use.
        use alpha = Torch.scalar (eta * sqrt (1.0 - c.Beta2 ** t) / (1.0 - c.Beta1 ** t))
        let b1, b2, eps = Torch.constant c.Beta1, Torch.constant c.Beta2, Torch.constant c.Epsilon
        let oneMinusB1, oneMinusB2 = Torch.constant (1.0 - c.Beta1), Torch.constant (1.0 - c.Beta2)
        let move (p: Tensor) (m: Tensor) (v: Tensor) =
            use denominator = v.sqrt().add_(eps, Torch.one)
            p.addcdiv_(m, denominator, alpha) |> ignore
        for i in 0 .. parameters.Length - 1 do
            let g, m, v = gradients.[i], s.FirstMoments.[i], s.SumSquares.[i]
            // Burda et al.'s code moves by the moments before this gradient; Kingma & Ba by those after it.
            if c.Variant = BurdaCode then move parameters.[i] m v
            m.mul_(b1).add_(g, oneMinusB1) |> ignore
            v.mul_(b2).addcmul_(g, g, oneMinusB2) |> ignore
            if c.Variant = KingmaBa then move parameters.[i] m v
        { s with Steps = s.Steps + 1L }

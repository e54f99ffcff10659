namespace Vae.Core

open Vae
open System
open TorchSharp

/// How a run's steps compute their gradient. Auto: the hand-derived step (HandDerivedSteps) wherever it covers the
/// configuration, else autograd; Autograd: always the algorithm's autograd step; HandDerived: the hand-derived step,
/// refused where it does not cover the configuration. The trajectories agree to rounding (property-tested in float64).
/// OnePass: the hand-derived AEVB step with the work between its float32 multiplies done in one pass per layer
/// (Kernels) and Adagrad's one-pass update, as the bfloat16 step does; its rounding differs from the others', so it is
/// never chosen by Auto (a recorded run replays with the gradient it recorded).
type GradientChoice =
    | Auto
    | Autograd
    | HandDerived
    | OnePass

/// How wake-sleep (the paper's baseline) parameterises its recognition model and draws its fantasies.
type WakeSleepVariant =
    /// The AEVB encoder as it is (Appendix C.2, every parameter drawn from N(0, 0.01^2)), and fantasies from
    /// VaeModel.sampleData (sigmoid-mean Gaussian draws clipped to [0, 1]).
    | SharedEncoder
    /// The paper's code (anglepy): MLBN_Inverse's recognition model, log sigma^2 = 0.1 W h + b with W and b zero at the
    /// start, and fantasies drawn as its generative models draw them (VaeModel.sampleDataUnclipped).
    | Anglepy

/// When wake-sleep's sleep phase draws its fantasies: before or after the wake phase's update of the decoder.
type WakeSleepOrder =
    /// Both phases' gradients before either update, from the same decoder (so that a non-finite value in either phase
    /// leaves every parameter unchanged).
    | GradientsFirst
    /// The paper's code (anglepy's step_wakesleep, wzoptim.py:222-263): the wake phase updates the decoder, then the
    /// sleep phase draws its fantasies from the updated decoder and updates the encoder.
    | WakeUpdateFirst

/// The order in which minibatches take the training data.
type MinibatchOrder =
    /// M datapoints drawn uniformly with replacement at every step (the paper's code, anglepy).
    | WithReplacement
    /// Consecutive blocks of M datapoints in the data's own order, the same every pass, continuing from the start when
    /// the data ends (Burda et al.'s code, train.py: no shuffling).
    | InOrder

/// What the encoder's scale head computes from its last tanh layer h, in the coordinates the optimiser steps in. The
/// model always stores log sigma^2 = W h + b (eq. 10's parameterisation), so evaluation and export never see the choice.
type EncoderScaleHead =
    /// log sigma^2 = W h + b, the optimiser stepping on W and b (the paper's code, anglepy).
    | LogVariance
    /// log sigma = W' h + b' (Burda et al.'s code: sigma = exp(Linear(h)), iwae.py's sigma_network): the model keeps
    /// W = 2 W' and b = 2 b', and the optimiser steps on W' and b' (EncoderScaleHead.ascendIn). Adam runs only. The
    /// weight prior, when on, stays on the model's parameters, as for every run (Burda et al. train without one).
    | LogStandardDeviation

/// What every learner (AEVB, wake-sleep, Monte Carlo EM) is configured by: the estimator, the minibatch, Adagrad, the
/// weight prior, binarisation, precision and the gradient path; LearnerConfig.paper gives section 5's settings.
type LearnerConfig =
    { Estimator: EstimatorKind
      /// Samples L of eps per datapoint (the paper: 1).
      Samples: int
      /// Minibatch size M (the paper: 100).
      BatchSize: int
      /// Adagrad as the paper's code (section 5), or Adam under a step-size schedule (Burda et al. 2015).
      Optimizer: OptimizerConfig
      /// Add the N(0, I) prior on weights (not biases), its gradient scaled by M/N (the paper's code).
      WeightPrior: bool
      /// Binarise each minibatch by sampling x ~ Bernoulli(grey level) (modern practice; the paper: off).
      Binarize: bool
      /// Matrix multiplies in bfloat16 (float32 master weights, gradients and Adagrad state); only the fused
      /// step (HandDerivedSteps) has it. Off: float32 throughout, as the paper.
      MixedPrecision: bool
      /// Which gradient the steps use (Auto by default).
      Gradient: GradientChoice
      /// Wake-sleep's recognition model and fantasies (SharedEncoder by default); other algorithms refuse Anglepy.
      WakeSleep: WakeSleepVariant
      /// The encoder's gradient of the importance-weighted bound (Reparameterised by default); only estimator Iwae
      /// takes DoublyReparameterised.
      EncoderGradient: EncoderGradient
      /// How minibatches take the training data (WithReplacement by default, the paper's).
      Order: MinibatchOrder
      /// How the run's parameters are first drawn (PaperNormal by default, section 5's).
      Initialization: Initialization
      /// The decoder's output bias before the first step (Drawn by default, the paper's).
      OutputBias: DecoderOutputBias
      /// The coordinates of the encoder's scale head (LogVariance by default, the paper's).
      ScaleHead: EncoderScaleHead
      /// Wake-sleep's phase order (GradientsFirst by default); other algorithms refuse WakeUpdateFirst.
      WakeSleepOrder: WakeSleepOrder }

/// Persistent Markov chains of Monte Carlo EM: one latent point per training datapoint, and the
/// HMC step size being tuned.
type McmcState = { Chains: Tensor; StepSize: float }

/// The state a learner (AEVB, wake-sleep, Monte Carlo EM) carries from step to step: the model,
/// Adagrad's accumulators over all its parameters, and MCEM's chains (the generator is carried beside it).
type TrainerState = { Model: VaeModel; Optimizer: OptimizerState; Mcmc: McmcState option }


/// Section 5's settings.
[<RequireQualifiedAccess>]
module LearnerConfig =

    /// The paper's settings: estimator B, L = 1, M = 100, Adagrad with the given step size, weight prior, grey levels.
    let paper (stepSize: float) =
        { Estimator = B; Samples = 1; BatchSize = 100; Optimizer = Optimizer.paper stepSize; WeightPrior = true; Binarize = false; MixedPrecision = false; Gradient = Auto
          WakeSleep = SharedEncoder; EncoderGradient = Reparameterised; Order = WithReplacement
          Initialization = PaperNormal; OutputBias = Drawn; ScaleHead = LogVariance; WakeSleepOrder = GradientsFirst }

/// anglepy's wake-sleep recognition model trained in the model's own coordinates: the model stores W' = 0.1 W, so it
/// stays an ordinary Gaussian MLP encoder (evaluation and export unchanged). Adagrad on W with step size eta and
/// regulariser r moves W' exactly as Adagrad on W' with 0.1 eta and 100 r, and the N(0, 1) prior on W is N(0, 0.1^2)
/// on W' (precision 100).
[<RequireQualifiedAccess>]
module WakeSleepVariant =

    /// The factor of anglepy's log sigma^2 = 0.1 W h + b (MLBN_Inverse.logvar_factor).
    let logVarFactor = 0.1

    /// The parameter that anglepy scales: the recognition model's log-variance weights.
    let scaledParameter = "encoder.logvar.weight"

    /// Whether a variant trains scaledParameter in scaled coordinates.
    let scales (v: WakeSleepVariant) = v = Anglepy

    /// Adagrad's settings for the named parameter under the variant: c, or for scaledParameter in scaled coordinates
    /// 0.1 eta and 100 r.
    let adagradFor (v: WakeSleepVariant) (c: AdagradConfig) (name: string) : AdagradConfig =
        if scales v && name = scaledParameter then
            { c with StepSize = c.StepSize * logVarFactor; Regulariser = c.Regulariser / (logVarFactor * logVarFactor) }
        else c

    /// The weight prior's precision on scaledParameter beyond the N(0, 1) every weight has: 1 / 0.1^2 - 1 = 99.
    let extraPrecision (v: WakeSleepVariant) = if scales v then 1.0 / (logVarFactor * logVarFactor) - 1.0 else 0.0

    /// The model a run with the variant starts from: anglepy's recognition model has a zero log-variance layer
    /// (MLBN_Inverse.init_w); the draws of the other parameters are unchanged.
    let initialise (v: WakeSleepVariant) (m: VaeModel) : VaeModel =
        if scales v then
            use _ = torch.no_grad ()
            m.Encoder.LogVar.Weight.zero_() |> ignore
            m.Encoder.LogVar.Bias.zero_() |> ignore
        m

    /// Fantasies x ~ p(x|z) for the sleep phase under the variant.
    let fantasies (v: WakeSleepVariant) (m: VaeModel) (z: Tensor) (g: torch.Generator) : Tensor =
        match v with
        | SharedEncoder -> VaeModel.sampleData m z g
        | Anglepy -> VaeModel.sampleDataUnclipped m z g

/// Burda et al.'s log-sigma head (EncoderScaleHead.LogStandardDeviation) as coordinates of the optimiser: their W' and
/// b' are half the model's log-variance head, so a step on (W', b') with gradient 2 dL/dW is the model's head halved,
/// stepped and doubled. Halving and doubling are exact in binary floating point, so the step is theirs bit for bit.
[<RequireQualifiedAccess>]
module EncoderScaleHead =

    /// log sigma^2 = factor log sigma.
    let factor = 2.0

    /// The parameters of the head, as VaeModel.parameters names them.
    let parameterNames = [ "encoder.logvar.weight"; "encoder.logvar.bias" ]

    /// The name a checkpoint and options.txt record.
    let name = function LogVariance -> "log-variance" | LogStandardDeviation -> "log-standard-deviation"

    /// The model a run with the head starts from: its draws are of W' and b', so the model's head is twice them.
    let initialise (h: EncoderScaleHead) (m: VaeModel) : VaeModel =
        if h = LogStandardDeviation then
            use _ = torch.no_grad ()
            m.Encoder.LogVar.Weight.mul_(Torch.constant factor) |> ignore
            m.Encoder.LogVar.Bias.mul_(Torch.constant factor) |> ignore
        m

    /// The head's (parameter, gradient) pairs for gradients in VaeModel.tensors' order.
    let internal pairs (m: VaeModel) (gradients: Tensor[]) : (Tensor * Tensor) list =
        VaeModel.parameters m
        |> List.mapi (fun i p -> i, p)
        |> List.filter (fun (_, p) -> List.contains p.Name parameterNames)
        |> List.map (fun (i, p) -> p.Tensor, gradients.[i])

    /// Runs an optimiser step (ascend) in the head's coordinates: under LogStandardDeviation the head's (parameter,
    /// gradient) pairs are halved and doubled (in place) before the step, and the parameters doubled after it; under
    /// LogVariance the pairs are never asked for.
    let ascendIn (h: EncoderScaleHead) (headOf: unit -> (Tensor * Tensor) list) (ascend: unit -> OptimizerState) : OptimizerState =
        match h with
        | LogVariance -> ascend ()
        | LogStandardDeviation ->
            let head = headOf ()
            let scaleAll (ts: Tensor seq) (k: float) =
                use _ = torch.no_grad ()
                for t in ts do t.mul_(Torch.constant k) |> ignore
            scaleAll (List.map fst head) (1.0 / factor)
            scaleAll (List.map snd head) factor
            // The model's head is whole again whatever the step raises.
            try ascend () finally scaleAll (List.map fst head) factor

/// The pieces every learner shares: the minibatch draw, the weight prior and the finiteness check.
[<RequireQualifiedAccess>]
module Learner =

    /// The minibatch of optimiser step `step` (from 0): M datapoints by random indices (WithReplacement, as the paper's
    /// code) or rows step M, ..., step M + M - 1 modulo N (InOrder), binarised by a fresh draw when asked.
    let minibatchAt (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (step: int64) : Tensor =
        let n = data.shape.[0]
        let idx =
            match c.Order with
            | WithReplacement -> torch.randint(0L, n, [| int64 c.BatchSize |], dtype = torch.int64, generator = g)
            | InOrder ->
                let start = (step % n) * int64 c.BatchSize % n
                torch.tensor([| for i in 0L .. int64 c.BatchSize - 1L -> (start + i) % n |], dtype = torch.int64)
        let x = data.index_select(0L, idx)
        if c.Binarize then torch.bernoulli(x, generator = g) else x

    /// A minibatch drawn with replacement (the paper's order); the in-order minibatch depends on the step, so it is
    /// minibatchAt's.
    let minibatch (c: LearnerConfig) (data: Tensor) (g: torch.Generator) : Tensor =
        if c.Order <> WithReplacement then invalidArg "c" "Order = InOrder takes the minibatch of a step: use Learner.minibatchAt"
        minibatchAt c data g 0L

    /// Passes over a training set of n datapoints that the given optimiser steps made: steps M / n (a step-size
    /// schedule's clock).
    let passes (c: LearnerConfig) (n: int64) (steps: int64) : float = float steps * float c.BatchSize / float n

    /// objective + (M/N) log p(theta) over the weights of ps when the weight prior is on (the paper's
    /// code scales the N(0, I) prior's gradient by M/N; shared by AEVB, wake-sleep and MCEM).
    let withWeightPrior (c: LearnerConfig) (n: int64) (ps: NamedParameter list) (objective: Tensor) : Tensor =
        if c.WeightPrior then objective.add((VaeModel.logPriorOf ps).mul(Torch.constant (float c.BatchSize / float n)), Torch.one) else objective

    /// Reads a value and checks it and every gradient for finiteness in one host synchronisation (a NaN
    /// or infinity anywhere makes the gradients' sum non-finite). Returns the value, or raises
    /// NonFiniteBoundException for the step.
    let requireFinite (step: int64) (value: Tensor) (grads: Tensor[]) : float =
        let gsum = torch.stack(grads |> Array.map (fun t -> t.sum())).sum()
        let both = torch.stack([| value.to_type(torch.float64); gsum.to_type(torch.float64) |]).data<double>().ToArray()
        if not (Double.IsFinite both.[0] && Double.IsFinite both.[1]) then raise (NonFiniteBoundException(step, both.[0]))
        both.[0]

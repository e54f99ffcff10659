namespace Vae.Core

open Vae
open System
open TorchSharp

/// Auto-Encoding Variational Bayes (Algorithm 1).
[<RequireQualifiedAccess>]
module Aevb =

    /// A fresh state: the model's parameters record gradients; Adagrad accumulators are zero.
    let init (model: VaeModel) : TrainerState =
        let model = VaeModel.requireGrad true model
        { Model = model; Optimizer = Adagrad.init (VaeModel.tensors model); Mcmc = None }

    /// Draws a minibatch of M datapoints by random indices (with replacement, as the paper's code),
    /// binarised when asked.
    let minibatch (c: LearnerConfig) (data: Tensor) (g: torch.Generator) : Tensor =
        let idx = torch.randint(0L, data.shape.[0], [| int64 c.BatchSize |], dtype = torch.int64, generator = g)
        let x = data.index_select(0L, idx)
        if c.Binarize then torch.bernoulli(x, generator = g) else x

    /// objective + (M/N) log p(theta) over the weights of ps when the weight prior is on (the paper's
    /// code scales the N(0, I) prior's gradient by M/N; shared by AEVB, wake-sleep and MCEM).
    let withWeightPrior (c: LearnerConfig) (n: int64) (ps: NamedParameter list) (objective: Tensor) : Tensor =
        if c.WeightPrior then objective + VaeModel.logPriorOf ps * (float c.BatchSize / float n) else objective

    /// The objective AEVB ascends for minibatch x and noise eps: the sum of per-datapoint estimates
    /// plus (M/N) log p(theta) when the weight prior is on. Returns (objective, per-datapoint estimates).
    let objective (c: LearnerConfig) (n: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor * Tensor =
        let perDatapoint = ElboEstimator.ofKind c.Estimator m x eps
        withWeightPrior c n (VaeModel.parameters m) (perDatapoint.sum()), perDatapoint

    /// The gradient of the objective in every parameter (in VaeModel.tensors' order). With the doubly reparameterised
    /// encoder gradient, the encoder's part is that of the surrogate (ElboEstimator.iwaeEncoderSurrogate, weight prior
    /// included) and the decoder's that of the objective; the surrogate's own forward pass keeps the two graphs apart.
    let gradients (c: LearnerConfig) (n: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) (objective: Tensor) : Tensor[] =
        match c.Estimator, c.EncoderGradient with
        | Iwae, DoublyReparameterised ->
            let tensorsOf (ps: NamedParameter list) = ps |> List.map (fun p -> p.Tensor) |> List.toArray
            let encoder, decoder = tensorsOf (VaeModel.encoderParameters m), tensorsOf (VaeModel.decoderParameters m)
            let surrogate = withWeightPrior c n (VaeModel.parameters m) ((ElboEstimator.iwaeEncoderSurrogate m x eps).sum())
            let ofDecoder = torch.autograd.grad([| objective |], decoder) |> Seq.toArray
            let ofEncoder = torch.autograd.grad([| surrogate |], encoder) |> Seq.toArray
            Array.append ofEncoder ofDecoder
        | _, DoublyReparameterised ->
            invalidArg "EncoderGradient" (sprintf "the doubly reparameterised gradient is of the importance-weighted bound; estimator %A has none" c.Estimator)
        | _, Reparameterised -> torch.autograd.grad([| objective |], VaeModel.tensors m) |> Seq.toArray

    /// Reads a value and checks it and every gradient for finiteness in one host synchronisation (a NaN
    /// or infinity anywhere makes the gradients' sum non-finite). Returns the value, or raises
    /// NonFiniteBoundException for the step.
    let requireFinite (step: int64) (value: Tensor) (grads: Tensor[]) : float =
        let gsum = torch.stack(grads |> Array.map (fun t -> t.sum())).sum()
        let both = torch.stack([| value.to_type(torch.float64); gsum.to_type(torch.float64) |]).data<double>().ToArray()
        if not (Double.IsFinite both.[0] && Double.IsFinite both.[1]) then raise (NonFiniteBoundException(step, both.[0]))
        both.[0]

    /// One step of Algorithm 1 on training data [N; D]: minibatch, noise, gradient of the
    /// objective, Adagrad ascent (in place). Returns the new state and the minibatch's mean bound
    /// per datapoint. Raises NonFiniteBoundException, before any update, when the estimate or a gradient is not finite.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        use _ = torch.NewDisposeScope()
        let x = minibatch c data g
        let eps = ElboEstimator.noise c.Samples c.BatchSize s.Model g
        let parameters = VaeModel.tensors s.Model
        let objective, perDatapoint = objective c data.shape.[0] s.Model x eps
        let grads = gradients c data.shape.[0] s.Model x eps objective
        let bound = requireFinite s.Optimizer.Steps (perDatapoint.mean()) grads
        let opt = Adagrad.ascend c.Optimizer s.Optimizer parameters grads
        { s with Optimizer = opt }, bound

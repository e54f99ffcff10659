namespace Vae.Core

open Vae
open System
open TorchSharp

/// Auto-Encoding Variational Bayes (Algorithm 1).
[<RequireQualifiedAccess>]
module Aevb =

    /// A fresh state for the given optimiser: the model's parameters record gradients; Adagrad's sums, or Adam's two
    /// moments, are zero.
    let initFor (o: OptimizerConfig) (model: VaeModel) : TrainerState =
        let model = VaeModel.requireGrad true model
        { Model = model; Optimizer = Optimizer.init o (VaeModel.tensors model); Mcmc = None }

    /// A fresh state for Adagrad (whose zero state does not depend on its settings).
    let init (model: VaeModel) : TrainerState = initFor (Optimizer.paper 0.02) model

    /// The objective AEVB ascends for minibatch x and noise eps: the sum of per-datapoint estimates
    /// plus (M/N) log p(theta) when the weight prior is on. Returns (objective, per-datapoint estimates).
    let objective (c: LearnerConfig) (n: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor * Tensor =
        let perDatapoint = ElboEstimator.ofKind c.Estimator m x eps
        Learner.withWeightPrior c n (VaeModel.parameters m) (perDatapoint.sum()), perDatapoint

    /// The gradient of the objective in every parameter (in VaeModel.tensors' order). With the doubly reparameterised
    /// encoder gradient, the encoder's part is that of the surrogate (ElboEstimator.iwaeEncoderSurrogate, weight prior
    /// included) and the decoder's that of the objective; the surrogate's own forward pass keeps the two graphs apart.
    let gradients (c: LearnerConfig) (n: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) (objective: Tensor) : Tensor[] =
        match c.Estimator, c.EncoderGradient with
        | Iwae, DoublyReparameterised ->
            let tensorsOf (ps: NamedParameter list) = ps |> List.map (fun p -> p.Tensor) |> List.toArray
            let encoder, decoder = tensorsOf (VaeModel.encoderParameters m), tensorsOf (VaeModel.decoderParameters m)
            let surrogate = Learner.withWeightPrior c n (VaeModel.parameters m) ((ElboEstimator.iwaeEncoderSurrogate m x eps).sum())
            let ofDecoder = torch.autograd.grad([| objective |], decoder) |> Seq.toArray
            let ofEncoder = torch.autograd.grad([| surrogate |], encoder) |> Seq.toArray
            Array.append ofEncoder ofDecoder
        | _, DoublyReparameterised ->
            invalidArg "EncoderGradient" (sprintf "the doubly reparameterised gradient is of the importance-weighted bound; estimator %A has none" c.Estimator)
        | _, Reparameterised -> torch.autograd.grad([| objective |], VaeModel.tensors m) |> Seq.toArray

    /// Moved to Learner.minibatch (shared by every learner).
    [<Obsolete("Use Learner.minibatch; this forwarder goes in the next version.")>]
    let minibatch (c: LearnerConfig) (data: Tensor) (g: torch.Generator) : Tensor = Learner.minibatch c data g

    /// Moved to Learner.withWeightPrior (shared by every learner).
    [<Obsolete("Use Learner.withWeightPrior; this forwarder goes in the next version.")>]
    let withWeightPrior (c: LearnerConfig) (n: int64) (ps: NamedParameter list) (objective: Tensor) : Tensor =
        Learner.withWeightPrior c n ps objective

    /// Moved to Learner.requireFinite (shared by every learner).
    [<Obsolete("Use Learner.requireFinite; this forwarder goes in the next version.")>]
    let requireFinite (step: int64) (value: Tensor) (grads: Tensor[]) : float = Learner.requireFinite step value grads

    /// One step of Algorithm 1 on training data [N; D]: minibatch, noise, gradient of the
    /// objective, Adagrad ascent (in place). Returns the new state and the minibatch's mean bound
    /// per datapoint. Raises NonFiniteBoundException, before any update, when the estimate or a gradient is not finite.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        use _ = torch.NewDisposeScope()
        let x = Learner.minibatchAt c data g s.Optimizer.Steps
        let eps = ElboEstimator.noise c.Samples c.BatchSize s.Model g
        let parameters = VaeModel.tensors s.Model
        let objective, perDatapoint = objective c data.shape.[0] s.Model x eps
        let grads = gradients c data.shape.[0] s.Model x eps objective
        let bound = Learner.requireFinite s.Optimizer.Steps (perDatapoint.mean()) grads
        let opt =
            EncoderScaleHead.ascendIn c.ScaleHead (fun () -> EncoderScaleHead.pairs s.Model grads) (fun () ->
                Optimizer.ascend c.Optimizer (Learner.passes c data.shape.[0] s.Optimizer.Steps) s.Optimizer parameters grads)
        { s with Optimizer = opt }, bound

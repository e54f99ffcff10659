namespace Vae.Core

open System
open TorchSharp

/// AEVB's step for the objectives that are functions of the log importance weights log w_l = log p(x, z_l) -
/// log q(z_l|x): estimator A with L samples (eq. 6, their mean) and the importance-weighted bound with K (Burda et al.
/// eq. 8, their log-mean-exp), with either encoder gradient, for a Gaussian MLP encoder and a Bernoulli MLP decoder of
/// any number of tanh layers, under Adagrad or Adam. Backpropagation is written out: the K·M latent points go through
/// each decoder layer as one multiply, and each objective enters only through the weights w~ it puts on the log
/// weights (1/L, or their softmax). Minibatch and noise are drawn as Aevb.step draws them and the optimiser's update
/// is Aevb.step's over the whole parameter vector at once, so the run follows the autograd step's trajectory up to
/// rounding (the property tests check the gradients against autograd in float64).
[<RequireQualifiedAccess>]
module internal LogWeightSteps =

    /// Whether this step computes the configuration: estimator A or the importance-weighted bound, a Bernoulli decoder,
    /// and neither bfloat16 multiplies nor the one-pass step (which are estimator B's).
    let supports (c: LearnerConfig) (m: VaeModel) : bool =
        (c.Estimator = A || c.Estimator = Iwae)
        && (match m.Decoder with BernoulliDecoder _ -> true | _ -> false)
        && not c.MixedPrecision && c.Gradient <> OnePass

    let private affine (a: Tensor) (l: Linear) = HandDerivedSteps.affine a l.Weight l.Bias
    let private throughTanh = HandDerivedSteps.throughTanh

    /// The tanh layers' outputs for input x, first layer first.
    let private forward (layers: Linear list) (x: Tensor) : Tensor list =
        layers |> List.fold (fun hs l -> (affine (match hs with h :: _ -> h | [] -> x) l).tanh_() :: hs) [] |> List.rev

    /// An affine layer's gradient from the gradient dy of its output and its input a, written into g; returns
    /// dy's gradient at the input when asked.
    let private backAffine (l: Linear) (g: Linear) (a: Tensor) (dy: Tensor) (withInput: bool) : Tensor option =
        g.Weight.addmm_(dy.t(), a, 0.0f, 1.0f) |> ignore
        g.Bias.copy_(dy.sum(0L)) |> ignore
        if withInput then Some(dy.mm(l.Weight)) else None

    /// Backpropagates dLast, the gradient at the last tanh layer's output, through the layers (inputs x, outputs hs),
    /// writing their gradients into gs; returns the gradient at x when asked.
    let private backward (layers: Linear list) (gs: Linear list) (x: Tensor) (hs: Tensor list) (dLast: Tensor) (withInput: bool) : Tensor option =
        let inputs = x :: List.take (hs.Length - 1) hs
        List.zip3 layers gs (List.zip inputs hs)
        |> List.rev
        |> List.indexed
        |> List.fold (fun (dh: Tensor option) (i, (l, g, (input, h))) ->
            let first = i = layers.Length - 1
            backAffine l g input (throughTanh dh.Value h) (not first || withInput)) (Some dLast)

    let private bernoulliOf (m: VaeModel) =
        match m.Decoder with
        | BernoulliDecoder p -> p
        | _ -> invalidOp "this step needs a Bernoulli MLP decoder"

    /// Writes into gradient (a model of views of the gradient vector laid out as m's) the gradient, for model m, of
    /// sum_i F(log w_i) + (M/N) log p(theta) (the weight prior when on), where F is the mean over the L samples
    /// (estimator A) or their log-mean-exp (Iwae), for minibatch x [M; D] and noise eps [L; M; J]; with the doubly
    /// reparameterised encoder gradient (Tucker et al. 2018, eq. 5) the encoder's part is sum_l w~_l^2 d log w_l / dz_l
    /// dz_l / dphi. Returns the per-datapoint estimates [M].
    let gradient (c: LearnerConfig) (n: int64) (gradient: VaeModel) (weightCount: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        use _ = torch.no_grad ()
        let l, batch, j = eps.shape.[0], x.shape.[0], eps.shape.[2]
        let encoder, gEncoder = m.Encoder, gradient.Encoder
        let decoder, gDecoder = bernoulliOf m, bernoulliOf gradient
        let encoderLayers, gEncoderLayers = encoder.Hidden :: encoder.Deeper, gEncoder.Hidden :: gEncoder.Deeper
        let decoderLayers, gDecoderLayers = decoder.Hidden :: decoder.Deeper, gDecoder.Hidden :: gDecoder.Deeper
        // Forward (Appendix C.2; Burda et al.'s deeper MLPs): q(z|x) = N(mu, sigma^2); z_l = mu + sigma eps_l, all
        // K·M of them through the decoder as one batch.
        let hs = forward encoderLayers x
        let h = List.last hs
        let q : Distributions.DiagonalGaussian = { Mean = affine h encoder.Mean; LogVar = affine h encoder.LogVar }
        let sd = q.LogVar.mul(Torch.constant 0.5).exp_()
        let z = Distributions.reparameterise q eps
        let zRows = z.reshape([| l * batch; j |])
        let hd = forward decoderLayers zRows
        let logits = affine (List.last hd) decoder.Logits
        let xRows = x.unsqueeze(0L).expand([| l; batch; x.shape.[1] |]).reshape([| l * batch; x.shape.[1] |])
        // log w_l = log p(x|z_l) + log p(z_l) - log q(z_l|x) [L; M], as ElboEstimator.logWeights.
        let logW =
            (Distributions.bernoulliLogProbability logits xRows).view([| l; batch |])
                .add(Distributions.standardNormalLogDensity z, Torch.one)
                .sub(Distributions.gaussianLogDensityOfNoise q eps)
        let perDatapoint, weights =
            match c.Estimator with
            | Iwae -> logW.logsumexp(0L).sub(Torch.constant (Math.Log(float l))), torch.softmax(logW, 0)
            | _ -> logW.mean([| 0L |]), torch.ones_like(logW).div_(Torch.constant (float l))
        let w = weights.unsqueeze(-1L)
        // Decoder: d/dlogits of w~_l log p(x|z_l) = w~_l (x - sigmoid(logits)); backpropagated to each z_l.
        let dLogits = torch.sub(xRows, logits.sigmoid()).mul_(weights.reshape([| l * batch; 1L |]))
        let dHidden = (backAffine decoder.Logits gDecoder.Logits (List.last hd) dLogits true).Value
        let dzLikelihood = (backward decoderLayers gDecoderLayers zRows hd dHidden true).Value.view([| l; batch; j |])
        // w~_l d(log p(x|z_l) + log p(z_l))/dz_l; log q's density of the noise adds 1/2 per log-variance (sum_l w~_l = 1).
        let dz = dzLikelihood.sub(w.mul(z))
        let dMu, dLogVar =
            match c.EncoderGradient with
            | Reparameterised ->
                dz.sum(0L), dz.mul(eps).sum(0L).mul_(sd).mul_(Torch.constant 0.5).add_(Torch.constant 0.5, Torch.one)
            | DoublyReparameterised ->
                // w~_l^2 d log w_l / dz_l with q's density at held parameters: d(-log q)/dz = eps / sigma.
                let dzHeld = dz.add(w.mul(eps).div(sd), Torch.one).mul_(w)
                dzHeld.sum(0L), dzHeld.mul(eps).sum(0L).mul_(sd).mul_(Torch.constant 0.5)
        let dh =
            (backAffine encoder.Mean gEncoder.Mean h dMu true).Value
                .add((backAffine encoder.LogVar gEncoder.LogVar h dLogVar true).Value, Torch.one)
        backward encoderLayers gEncoderLayers x hs dh false |> ignore
        if c.WeightPrior then
            gradient.ParameterVector.narrow(0L, 0L, weightCount)
                .add_(m.ParameterVector.narrow(0L, 0L, weightCount), Torch.constant (-(float batch) / float n)) |> ignore
        perDatapoint

    /// One step of Algorithm 1 (as Aevb.step: the same minibatch and noise draws, the same optimiser update, the same
    /// finiteness check) on a state from HandDerivedSteps.prepare, whose accumulators are vectors, so that the optimiser
    /// updates the whole parameter vector at once; the gradient is written into gradientModel (a model of views of a
    /// vector laid out as the state's). Returns the new state and the minibatch's mean estimate.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (gradientModel: VaeModel) (weightCount: int64) (s: TrainerState) : TrainerState * float =
        if not (HandDerivedSteps.flat s) then invalidArg "s" "this step trains a state from HandDerivedSteps.prepare (its optimiser's accumulators as vectors)"
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let x = Learner.minibatchAt c data g s.Optimizer.Steps
        let eps = ElboEstimator.noise c.Samples c.BatchSize s.Model g
        let perDatapoint = gradient c data.shape.[0] gradientModel weightCount s.Model x eps
        let parameters, grads = [| s.Model.ParameterVector |], [| gradientModel.ParameterVector |]
        let bound = Learner.requireFinite s.Optimizer.Steps (perDatapoint.mean()) grads
        let head () = [ s.Model.Encoder.LogVar.Weight, gradientModel.Encoder.LogVar.Weight; s.Model.Encoder.LogVar.Bias, gradientModel.Encoder.LogVar.Bias ]
        let opt =
            EncoderScaleHead.ascendIn c.ScaleHead head (fun () ->
                Optimizer.ascend c.Optimizer (Learner.passes c data.shape.[0] s.Optimizer.Steps) s.Optimizer parameters grads)
        { s with Optimizer = opt }, bound

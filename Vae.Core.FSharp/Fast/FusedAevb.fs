namespace Vae.Core

open Vae
open TorchSharp

/// The parameters, gradient and Adagrad accumulators of a VAE with an MLP decoder (Bernoulli or Gaussian), each held
/// in one flat buffer: the model's tensors are views of Parameters, Adagrad's of SumSquares. Weights come first
/// (so the weight prior is one operation over a prefix), and the mean and log-variance heads of each Gaussian MLP
/// are adjacent (so they are one matrix multiply).
type FusedBuffers =
    { /// The model, its tensors views of Parameters.
      Model: VaeModel
      /// Adagrad's state, its accumulators views of SumSquares.
      Optimizer: AdagradState
      /// Every parameter [P], weights first.
      Parameters: Tensor
      /// The objective's gradient [P], laid out as Parameters; written by FusedAevb.gradient.
      Gradient: Tensor
      /// Adagrad's accumulated squared gradients [P], laid out as Parameters.
      SumSquares: Tensor
      /// The number of weights: Parameters.[0 .. WeightCount - 1] are weights, the rest biases.
      WeightCount: int64
      /// The gradient as a model of views (same structure as Model).
      GradientModel: VaeModel
      /// The encoder's mean and log-variance heads as one layer of 2J outputs (views of Parameters and of Gradient).
      Heads: Linear
      HeadsGradient: Linear
      /// The decoder's output layer as one: its logits (Bernoulli), or its mean and log-variance heads as one layer of
      /// 2D outputs (Gaussian); views of Parameters and of Gradient.
      Output: Linear
      OutputGradient: Linear
      /// The mixed-precision step's multiply operands: Parameters cast to bfloat16 [P] at the start of each step, and
      /// the same views of it as Model and Heads of Parameters (laid out once, here).
      LowParameters: Tensor
      LowModel: VaeModel
      LowHeads: Linear }

/// AEVB's step in the paper's settings (estimator B with Appendix B's KL, L = 1, a Gaussian MLP encoder, a Bernoulli
/// or Gaussian MLP decoder), and the wake-sleep step with the same networks, with gradients derived by hand:
/// backpropagation through the MLPs written out, about a third of the operations autograd records, and Adagrad and
/// the weight prior over one flat buffer. Minibatches, noise and fantasies are drawn exactly as Aevb.step and
/// WakeSleep.step draw them, so each follows its autograd step's trajectory up to rounding (the property tests check
/// the gradients against autograd in float64).
[<RequireQualifiedAccess>]
module FusedAevb =

    let private bernoulli (m: VaeModel) = match m.Decoder with BernoulliDecoder _ -> true | _ -> false
    let private mlpDecoder (m: VaeModel) = match m.Decoder with BernoulliDecoder _ | GaussianDecoder _ -> true | LinearGaussianDecoder _ -> false

    /// Whether the fused AEVB step computes this configuration (otherwise use Aevb.step): estimator B with L = 1 and an
    /// MLP decoder; mixed precision only for a Bernoulli decoder in float32.
    let supports (c: LearnerConfig) (m: VaeModel) : bool =
        c.Estimator = B && c.Samples = 1 && mlpDecoder m
        && (not c.MixedPrecision || (m.Config.DType = torch.float32 && bernoulli m))

    /// Whether the fused wake-sleep step computes this configuration (otherwise use WakeSleep.step): an MLP decoder,
    /// no mixed precision.
    let supportsWakeSleep (c: LearnerConfig) (m: VaeModel) : bool = mlpDecoder m && not c.MixedPrecision

    /// Raises ArgumentException, naming what differs, when mixed precision is asked of a setting the fused step lacks.
    let requireSupported (c: LearnerConfig) (m: VaeModel) =
        if c.MixedPrecision && not (supports c m) then
            invalidArg "MixedPrecision"
                (sprintf "mixed precision needs estimator B, one sample per datapoint, a Bernoulli decoder and float32; got estimator %A, L = %d, %A, %O"
                    c.Estimator c.Samples m.Config.Likelihood m.Config.DType)

    /// Views of a flat buffer laid out as a model: weights first, then biases; each MLP's layers in order.
    let private layout (c: ModelConfig) (flat: Tensor) : VaeModel * Linear * Linear * int64 =
        let d, h, j = int64 c.InputDim, int64 c.HiddenUnits, int64 c.LatentDim
        let mutable offset = 0L
        let take (shape: int64[]) =
            let n = Array.fold (*) 1L shape
            let v = flat.narrow(0L, offset, n).view(shape)
            offset <- offset + n
            v
        // A Bernoulli decoder outputs D logits; a Gaussian one D means and D log-variances.
        let outputs = if c.Likelihood = Bernoulli then d else 2L * d
        let w1 = take [| h; d |]
        let wHeads = take [| 2L * j; h |]
        let w4 = take [| h; j |]
        let w5 = take [| outputs; h |]
        let weights = offset
        let b1 = take [| h |]
        let bHeads = take [| 2L * j |]
        let b4 = take [| h |]
        let b5 = take [| outputs |]
        let heads (w: Tensor) (b: Tensor) (k: int64) : GaussianMlp -> GaussianMlp = fun p ->
            { p with Mean = { Weight = w.narrow(0L, 0L, k); Bias = b.narrow(0L, 0L, k) }
                     LogVar = { Weight = w.narrow(0L, k, k); Bias = b.narrow(0L, k, k) } }
        let hidden (w: Tensor) (b: Tensor) = { Weight = w; Bias = b }
        let gaussian (hw: Tensor) (hb: Tensor) (w: Tensor) (b: Tensor) (k: int64) =
            heads w b k { Hidden = hidden hw hb; Mean = hidden w b; LogVar = hidden w b }
        let encoder = gaussian w1 b1 wHeads bHeads j
        let decoder =
            if c.Likelihood = Bernoulli then BernoulliDecoder { Hidden = hidden w4 b4; Logits = hidden w5 b5 }
            else GaussianDecoder(gaussian w4 b4 w5 b5 d)
        { Config = c; Encoder = encoder; Decoder = decoder }, { Weight = wHeads; Bias = bHeads }, { Weight = w5; Bias = b5 }, weights

    /// Flat buffers holding a copy of the state's parameters and accumulators; train the returned
    /// Model and Optimizer from now on (they are views of the buffers).
    let adopt (s: TrainerState) : FusedBuffers =
        if not (mlpDecoder s.Model) then invalidArg "s" "the fused steps need an MLP decoder (Bernoulli or Gaussian)"
        use _ = torch.no_grad ()
        let c = s.Model.Config
        let count = VaeModel.tensors s.Model |> Array.sumBy (fun t -> t.numel())
        let buffer () = torch.zeros([| count |], dtype = c.DType)
        let parameters, gradient, sums = buffer (), buffer (), buffer ()
        let model, heads, output, weights = layout c parameters
        let gradientModel, headsGradient, outputGradient, _ = layout c gradient
        let sumsModel, _, _, _ = layout c sums
        let low = torch.zeros([| (if c.Likelihood = Bernoulli && c.DType = torch.float32 then count else 0L) |], dtype = torch.bfloat16)
        let lowModel, lowHeads, _, _ = if low.numel() = 0L then model, heads, output, weights else layout c low
        Array.iter2 (fun (v: Tensor) (t: Tensor) -> v.copy_(t) |> ignore) (VaeModel.tensors model) (VaeModel.tensors s.Model)
        Array.iter2 (fun (v: Tensor) (t: Tensor) -> v.copy_(t) |> ignore) (VaeModel.tensors sumsModel) s.Optimizer.SumSquares
        { Model = model
          Optimizer = { s.Optimizer with SumSquares = VaeModel.tensors sumsModel }
          Parameters = parameters
          Gradient = gradient
          SumSquares = sums
          WeightCount = weights
          GradientModel = gradientModel
          Heads = heads
          HeadsGradient = headsGradient
          Output = output
          OutputGradient = outputGradient
          LowParameters = low
          LowModel = lowModel
          LowHeads = lowHeads }

    let private adopted = System.Runtime.CompilerServices.ConditionalWeakTable<VaeModel, FusedBuffers>()

    /// The buffers behind a state: those of an earlier adopt when its model came from one (nothing is copied),
    /// else new ones (adopt). Train the returned buffers' Model and Optimizer.
    let buffersOf (s: TrainerState) : FusedBuffers =
        match adopted.TryGetValue s.Model with
        | true, b -> b
        | _ ->
            let b = adopt s
            adopted.AddOrUpdate(b.Model, b)
            b

    /// Frees the flat buffers behind a model that adopt made, and forgets them; nothing for any other model. The
    /// model's own tensors (views of the buffers) are its owner's to dispose.
    let release (m: VaeModel) =
        match adopted.TryGetValue m with
        | true, b ->
            adopted.Remove m |> ignore
            let linears = [| b.Heads; b.HeadsGradient; b.Output; b.OutputGradient; b.LowHeads |] |> Array.collect (fun l -> [| l.Weight; l.Bias |])
            let views = Array.concat [ VaeModel.tensors b.GradientModel; VaeModel.tensors b.LowModel; b.Optimizer.SumSquares; linears ]
            for t in Array.append views [| b.Parameters; b.Gradient; b.SumSquares; b.LowParameters |] do t.Dispose()
        | _ -> ()

    /// The state trained by the fused step: the same values, its tensors views of flat buffers (see buffersOf).
    let prepare (s: TrainerState) : TrainerState =
        let b = buffersOf s
        // The accumulators are the buffers' own; the step count is the state's (it moves on after adopt).
        { s with Model = b.Model; Optimizer = { b.Optimizer with Steps = s.Optimizer.Steps } }

    let private parts (m: VaeModel) =
        match m.Decoder with
        | BernoulliDecoder p -> m.Encoder.Hidden, p.Hidden, p.Logits
        | _ -> invalidOp "the mixed-precision step needs a Bernoulli MLP decoder"

    let private decoderHidden (m: VaeModel) =
        match m.Decoder with
        | BernoulliDecoder p -> p.Hidden
        | GaussianDecoder p -> p.Hidden
        | LinearGaussianDecoder _ -> invalidOp "the fused steps need an MLP decoder"

    /// The N(0, I) weight prior's gradient, -theta on the weights scaled by M/N (the paper's code), added to b.Gradient.
    let private addWeightPrior (c: LearnerConfig) (n: int64) (m: int64) (b: FusedBuffers) =
        if c.WeightPrior then
            b.Gradient.narrow(0L, 0L, b.WeightCount).add_(b.Parameters.narrow(0L, 0L, b.WeightCount), Torch.constant (-(float m) / float n)) |> ignore

    // a W^T + bias.
    let private affine (a: Tensor) (w: Tensor) (bias: Tensor) = torch.addmm(bias, a, w.t(), 1.0f, 1.0f)
    // target <- a^T bm (a weight's gradient).
    let private outer (target: Tensor) (a: Tensor) (bm: Tensor) = target.addmm_(a.t(), bm, 0.0f, 1.0f) |> ignore
    // Through tanh: da = dh (1 - h^2).
    let private throughTanh (dh: Tensor) (h: Tensor) = torch.addcmul(dh, dh, h.square(), Torch.constant -1.0)

    /// The encoder's forward pass (Appendix C.2): h1 = tanh(W1 x + b1) and the heads [mu, log sigma^2] = W h1 + b [M; 2J].
    let private encoderForward (b: FusedBuffers) (x: Tensor) =
        let h1 = (affine x b.Model.Encoder.Hidden.Weight b.Model.Encoder.Hidden.Bias).tanh_()
        h1, affine h1 b.Heads.Weight b.Heads.Bias

    /// The encoder's gradient from the gradient dHeads of its heads, written into b.Gradient.
    let private encoderBackward (b: FusedBuffers) (x: Tensor) (h1: Tensor) (dHeads: Tensor) =
        let genc1 = b.GradientModel.Encoder.Hidden
        outer b.HeadsGradient.Weight dHeads h1
        b.HeadsGradient.Bias.copy_(dHeads.sum(0L)) |> ignore
        let da1 = throughTanh (dHeads.mm(b.Heads.Weight)) h1
        outer genc1.Weight da1 x
        genc1.Bias.copy_(da1.sum(0L)) |> ignore

    /// The decoder's pass for latent points z [M; J] and data x [M; D]: writes the gradient of sum log p(x|z) with
    /// respect to the decoder's parameters into b.Gradient, and returns -sum log p(x|z) and, when asked, d/dz.
    /// Bernoulli (C.1): logits = W5 h2 + b5, d/dlogits = x - sigmoid(logits). Gaussian (C.2): [m, log s^2] = W5 h2 + b5,
    /// mean = sigmoid(m) for the sigmoid-mean decoder (else m); with r = (x - mean) / s^2, d/dmean = r and
    /// d/dlog s^2 = ((x - mean) r - 1) / 2.
    let private decoderPass (b: FusedBuffers) (z: Tensor) (x: Tensor) (withDz: bool) : Tensor * Tensor option =
        let dec1, gdec1 = decoderHidden b.Model, decoderHidden b.GradientModel
        let h2 = (affine z dec1.Weight dec1.Bias).tanh_()
        let out = affine h2 b.Output.Weight b.Output.Bias
        let negLogLikelihood, dOut =
            match b.Model.Decoder with
            | BernoulliDecoder _ ->
                torch.nn.functional.binary_cross_entropy_with_logits(out, x, reduction = torch.nn.Reduction.Sum), torch.sub(x, out.sigmoid())
            | _ ->
                let d = x.shape.[1]
                let logVar = out.narrow(1L, d, d)
                let mean = if b.Model.Config.Likelihood = GaussianSigmoidMean then out.narrow(1L, 0L, d).sigmoid() else out.narrow(1L, 0L, d)
                let diff = torch.sub(x, mean)
                let r = diff.mul(logVar.neg().exp_())
                let dOut = torch.empty_like(out)
                let dMean = dOut.narrow(1L, 0L, d).copy_(r)
                if b.Model.Config.Likelihood = GaussianSigmoidMean then dMean.mul_(mean).mul_(mean.neg().add_(Torch.constant 1.0)) |> ignore
                dOut.narrow(1L, d, d).copy_(diff).mul_(r).sub_(Torch.constant 1.0).mul_(Torch.constant 0.5) |> ignore
                // -log N(x; mean, s^2) = (log s^2 + (x - mean)^2 / s^2 + log 2 pi) / 2, summed.
                let nll = (logVar.sum() + diff.mul(r).sum() + float (diff.numel()) * System.Math.Log(2.0 * System.Math.PI)) * 0.5
                nll, dOut
        outer b.OutputGradient.Weight dOut h2
        b.OutputGradient.Bias.copy_(dOut.sum(0L)) |> ignore
        let da2 = throughTanh (dOut.mm(b.Output.Weight)) h2
        outer gdec1.Weight da2 z
        gdec1.Bias.copy_(da2.sum(0L)) |> ignore
        negLogLikelihood, (if withDz then Some(da2.mm(dec1.Weight)) else None)

    /// gradient in the model's dtype, every operation through libtorch.
    let private gradientFull (c: LearnerConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
        let j = int64 b.Model.Config.LatentDim
        // Forward (Appendix C): h1 = tanh(W1 x + b1); [mu, log sigma^2] = W h1 + b; z = mu + sigma eps; then the decoder.
        let h1, heads = encoderForward b x
        let mu, logVar = heads.narrow(1L, 0L, j), heads.narrow(1L, j, j)
        let sd = logVar.mul(Torch.constant 0.5).exp_()
        let variance = sd.square()
        let z = torch.addcmul(mu, sd, eps, Torch.constant 1.0)
        // The bound (eq. 7): log p(x|z) - KL, with -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (Appendix B).
        let negLogLikelihood, dz = decoderPass b z x true
        let kl = ((mu.square() + variance - logVar).sum() - float (mu.numel())) * 0.5
        let meanBound = (negLogLikelihood + kl).neg_().div_(Torch.constant (float x.shape.[0]))
        // Heads: d/dmu = dz - mu; d/dlog sigma^2 = dz eps sigma / 2 + (1 - sigma^2) / 2.
        let dz = dz.Value
        let dHeads = torch.empty_like(heads)
        dHeads.narrow(1L, 0L, j).copy_(dz).sub_(mu) |> ignore
        dHeads.narrow(1L, j, j).copy_(dz).mul_(eps).mul_(sd).sub_(variance).add_(Torch.constant 1.0).mul_(Torch.constant 0.5) |> ignore
        encoderBackward b x h1 dHeads
        addWeightPrior c n x.shape.[0] b
        meanBound

    /// gradient with bfloat16 multiply operands: libtorch multiplies, and everything between the multiplies in one
    /// pass per layer (Kernels), in float32.
    let private gradientMixed (c: LearnerConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
        let m, d = x.shape.[0], x.shape.[1]
        let h, j = int64 b.Model.Config.HiddenUnits, int64 b.Model.Config.LatentDim
        let enc1, dec1, dec2 = parts b.Model
        let genc1, gdec1, gdec2 = parts b.GradientModel
        // The multiplies' operands: one cast of the flat parameters into the buffer laid out as the model.
        b.LowParameters.copy_(b.Parameters) |> ignore
        let lowHeads = b.LowHeads
        let lenc1, ldec1, ldec2 = parts b.LowModel
        let low (shape: int64[]) = torch.empty(shape, dtype = torch.bfloat16)
        let full (shape: int64[]) = torch.empty(shape, dtype = torch.float32)
        // target <- a^T bm (a weight's gradient), widened into the float32 buffer.
        let outer (target: Tensor) (a: Tensor) (bm: Tensor) = target.copy_(torch.mm(a.t(), bm)) |> ignore
        let eps = eps.contiguous()
        // Forward (Appendix C), as gradientFull.
        let xL = x.to_type(torch.bfloat16)
        let h1, h1L = full [| m; h |], low [| m; h |]
        Kernels.tanhLayer (torch.mm(xL, lenc1.Weight.t())) enc1.Bias h1 h1L
        let latent, zL = full [| m; 2L * j |], low [| m; j |]
        let kl = Kernels.latentForward (torch.mm(h1L, lowHeads.Weight.t())) b.Heads.Bias eps latent zL
        let h2, h2L = full [| m; h |], low [| m; h |]
        Kernels.tanhLayer (torch.mm(zL, ldec1.Weight.t())) dec1.Bias h2 h2L
        let dLogits = low [| m; d |]
        let negLogLikelihood = Kernels.bernoulliOutput (torch.mm(h2L, ldec2.Weight.t())) dec2.Bias x dLogits gdec2.Bias
        // Backward, as gradientFull.
        outer gdec2.Weight dLogits h2L
        let da2 = low [| m; h |]
        Kernels.tanhBackward (dLogits.mm(ldec2.Weight)) h2 da2 gdec1.Bias
        outer gdec1.Weight da2 zL
        let dHeads = low [| m; 2L * j |]
        Kernels.latentBackward (da2.mm(ldec1.Weight)) latent eps dHeads b.HeadsGradient.Bias
        outer b.HeadsGradient.Weight dHeads h1L
        let da1 = low [| m; h |]
        Kernels.tanhBackward (dHeads.mm(lowHeads.Weight)) h1 da1 genc1.Bias
        outer genc1.Weight da1 xL
        addWeightPrior c n m b
        torch.tensor(-(negLogLikelihood + kl) / float m, dtype = torch.float32)

    /// Writes into b.Gradient the gradient of the objective sum_i L^B(x_i, eps_i) + (M/N) log p(theta) (the weight
    /// prior when on) for minibatch x [M; D] and noise eps [M; J]; returns the minibatch's mean bound as a 0-d tensor.
    /// With c.MixedPrecision the matrix multiplies take bfloat16 operands (their results are rounded to bfloat16 and
    /// widened again), and the work between them runs in Kernels; everything else, and every value kept between steps,
    /// stays in float32.
    let gradient (c: LearnerConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
        use _ = torch.no_grad ()
        if c.MixedPrecision then gradientMixed c n b x eps else gradientFull c n b x eps

    /// One step of Algorithm 1 (as Aevb.step: same minibatch and noise draws, same Adagrad, same finiteness check)
    /// on the buffers of a state from prepare. Returns the new state (whose tensors stay views of the buffers) and the mean bound.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (b: FusedBuffers) (s: TrainerState) : TrainerState * float =
        if not (obj.ReferenceEquals(s.Model, b.Model)) then invalidArg "s" "the state's model is not the one these buffers hold (train the state FusedAevb.prepare returned)"
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let x = Aevb.minibatch c data g
        let eps = ElboEstimator.noise c.Samples c.BatchSize s.Model g
        let meanBound = gradient c data.shape.[0] b x (eps.squeeze(0L))
        // Finiteness from the bound and the biases' gradients alone: each bias gradient sums one layer's backpropagated
        // signal, and each weight gradient multiplies such a signal by finite activations (tanh, x, or z, finite when
        // the bound is), so a NaN or infinity anywhere shows in these; it saves a pass over every parameter.
        let bound = Aevb.requireFinite s.Optimizer.Steps meanBound [| b.Gradient.narrow(0L, b.WeightCount, b.Gradient.shape.[0] - b.WeightCount) |]
        // The float32 step keeps libtorch's Adagrad, so its trajectory stays Aevb.step's (and the recorded results');
        // mixed precision, which rounds differently by design, takes the one-pass update (a quarter of the memory traffic).
        let flat = { s.Optimizer with SumSquares = [| b.SumSquares |] }
        let opt =
            if c.MixedPrecision then Adagrad.ascendOnePass c.Optimizer flat b.Parameters b.Gradient
            else Adagrad.ascend c.Optimizer flat [| b.Parameters |] [| b.Gradient |]
        { s with Optimizer = { opt with SumSquares = s.Optimizer.SumSquares } }, bound

    /// Writes into b.Gradient the gradient of WakeSleep.step's objectives, derived by hand: the wake phase's
    /// sum log p(x, z) for z = mu + sigma eps from q(z|x) (held fixed) with respect to the decoder; the sleep phase's
    /// sum log q(zp|xp) for fantasies (zp, xp) ~ p with respect to the encoder; and the weight prior's, (M/N) log p(theta)
    /// over every weight, when on. Returns the minibatch's mean bound log p(x, z) - log q(z|x) and the sleep objective.
    let wakeSleepGradient (c: LearnerConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) (zp: Tensor) (xp: Tensor) : Tensor * Tensor =
        use _ = torch.no_grad ()
        let j = int64 b.Model.Config.LatentDim
        // Wake: the decoder's gradient at z from the recognition model.
        let _, heads = encoderForward b x
        let logVar = heads.narrow(1L, j, j)
        let z = torch.addcmul(heads.narrow(1L, 0L, j), logVar.mul(Torch.constant 0.5).exp_(), eps, Torch.constant 1.0)
        let negLogLikelihood, _ = decoderPass b z x false
        // log p(x|z) + log p(z) - log q(z|x) = log p(x|z) + (sum log sigma^2 + |eps|^2 - |z|^2) / 2 (the 2 pi terms cancel).
        let meanBound = ((logVar.sum() + eps.square().sum() - z.square().sum()) * 0.5 - negLogLikelihood).div_(Torch.constant (float x.shape.[0]))
        // Sleep: log N(zp; mu, sigma^2) at the fantasies; d/dmu = (zp - mu) / sigma^2, d/dlog sigma^2 = ((zp - mu)^2 / sigma^2 - 1) / 2.
        let h1, fantasyHeads = encoderForward b xp
        let fantasyLogVar = fantasyHeads.narrow(1L, j, j)
        let diff = torch.sub(zp, fantasyHeads.narrow(1L, 0L, j))
        let r = diff.mul(fantasyLogVar.neg().exp())
        let dHeads = torch.empty_like(fantasyHeads)
        dHeads.narrow(1L, 0L, j).copy_(r) |> ignore
        dHeads.narrow(1L, j, j).copy_(diff).mul_(r).sub_(Torch.constant 1.0).mul_(Torch.constant 0.5) |> ignore
        let sleep = (fantasyLogVar.sum() + diff.mul(r).sum() + float (diff.numel()) * System.Math.Log(2.0 * System.Math.PI)) * -0.5
        encoderBackward b xp h1 dHeads
        addWeightPrior c n x.shape.[0] b
        meanBound, sleep

    /// One wake-sleep step (as WakeSleep.step: the same minibatch, noise and fantasy draws in the same order, both
    /// gradients taken before either update, one Adagrad step over every parameter) on the buffers of a state from
    /// prepare. Raises NonFiniteBoundException before any update when a value or gradient is not finite.
    let wakeSleepStep (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (b: FusedBuffers) (s: TrainerState) : TrainerState * float =
        if not (obj.ReferenceEquals(s.Model, b.Model)) then invalidArg "s" "the state's model is not the one these buffers hold (train the state FusedAevb.prepare returned)"
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let m = s.Model
        let x = Aevb.minibatch c data g
        let eps = ElboEstimator.noise 1 c.BatchSize m g
        let zp = torch.randn([| int64 c.BatchSize; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g)
        // Bernoulli draws refuse probabilities that are not numbers: a decoder gone non-finite is reported as such.
        let xp =
            try VaeModel.sampleData m zp g
            with :? System.Runtime.InteropServices.ExternalException when (VaeModel.decoderParameters m |> List.exists (fun p -> not (p.Tensor.isfinite().all().item<bool> ()))) ->
                raise (NonFiniteBoundException(s.Optimizer.Steps, nan))
        let meanBound, sleep = wakeSleepGradient c data.shape.[0] b x (eps.squeeze(0L)) zp xp
        // As in step: the bias gradients carry every layer's backpropagated signal; the sleep objective and the
        // fantasies cover the sleep phase's inputs.
        let biases = b.Gradient.narrow(0L, b.WeightCount, b.Gradient.shape.[0] - b.WeightCount)
        let bound = Aevb.requireFinite s.Optimizer.Steps meanBound [| biases; sleep; xp |]
        let flat = { s.Optimizer with SumSquares = [| b.SumSquares |] }
        let opt = Adagrad.ascend c.Optimizer flat [| b.Parameters |] [| b.Gradient |]
        { s with Optimizer = { opt with SumSquares = s.Optimizer.SumSquares } }, bound

namespace Vae.Core

open TorchSharp

/// The parameters, gradient and Adagrad accumulators of a VAE with a Bernoulli decoder, each held in one
/// flat buffer: the model's tensors are views of Parameters, Adagrad's of SumSquares. Weights come first
/// (so the weight prior is one operation over a prefix), and the encoder's mean and log-variance heads
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
      /// The mixed-precision step's multiply operands: Parameters cast to bfloat16 [P] at the start of each step, and
      /// the same views of it as Model and Heads of Parameters (laid out once, here).
      LowParameters: Tensor
      LowModel: VaeModel
      LowHeads: Linear }

/// AEVB's step in the paper's MNIST setting (estimator B with Appendix B's KL, L = 1, a Gaussian MLP encoder and a
/// Bernoulli MLP decoder) with the gradient derived by hand: backpropagation through the two MLPs written out,
/// about a third of the operations autograd records, and Adagrad and the weight prior over one flat buffer. The
/// minibatch and the noise are drawn exactly as Aevb.step draws them, so both follow the same trajectory up to
/// rounding (the property tests check the gradient against autograd in float64).
[<RequireQualifiedAccess>]
module FusedAevb =

    /// Whether the fused step computes this configuration (otherwise use Aevb.step).
    let supports (c: AevbConfig) (m: VaeModel) : bool =
        c.Estimator = B && c.Samples = 1 && (match m.Decoder with BernoulliDecoder _ -> true | _ -> false)
        && (not c.MixedPrecision || m.Config.DType = torch.float32)

    /// Raises ArgumentException, naming what differs, when mixed precision is asked of a setting the fused step lacks.
    let requireSupported (c: AevbConfig) (m: VaeModel) =
        if c.MixedPrecision && not (supports c m) then
            invalidArg "MixedPrecision"
                (sprintf "mixed precision needs estimator B, one sample per datapoint, a Bernoulli decoder and float32; got estimator %A, L = %d, %A, %O"
                    c.Estimator c.Samples m.Config.Likelihood m.Config.DType)

    /// Views of a flat buffer laid out as a model: weights first, then biases; each MLP's layers in order.
    let private layout (c: ModelConfig) (flat: Tensor) : VaeModel * Linear * int64 =
        let d, h, j = int64 c.InputDim, int64 c.HiddenUnits, int64 c.LatentDim
        let mutable offset = 0L
        let take (shape: int64[]) =
            let n = Array.fold (*) 1L shape
            let v = flat.narrow(0L, offset, n).view(shape)
            offset <- offset + n
            v
        let w1 = take [| h; d |]
        let wHeads = take [| 2L * j; h |]
        let w4 = take [| h; j |]
        let w5 = take [| d; h |]
        let weights = offset
        let b1 = take [| h |]
        let bHeads = take [| 2L * j |]
        let b4 = take [| h |]
        let b5 = take [| d |]
        let encoder =
            { Hidden = { Weight = w1; Bias = b1 }
              Mean = { Weight = wHeads.narrow(0L, 0L, j); Bias = bHeads.narrow(0L, 0L, j) }
              LogVar = { Weight = wHeads.narrow(0L, j, j); Bias = bHeads.narrow(0L, j, j) } }
        let decoder = BernoulliDecoder { Hidden = { Weight = w4; Bias = b4 }; Logits = { Weight = w5; Bias = b5 } }
        { Config = c; Encoder = encoder; Decoder = decoder }, { Weight = wHeads; Bias = bHeads }, weights

    /// Flat buffers holding a copy of the state's parameters and accumulators; train the returned
    /// Model and Optimizer from now on (they are views of the buffers).
    let adopt (s: TrainerState) : FusedBuffers =
        match s.Model.Decoder with
        | BernoulliDecoder _ -> ()
        | _ -> invalidArg "s" "the fused AEVB step needs a Bernoulli MLP decoder"
        use _ = torch.no_grad ()
        let c = s.Model.Config
        let count = VaeModel.tensors s.Model |> Array.sumBy (fun t -> t.numel())
        let buffer () = torch.zeros([| count |], dtype = c.DType)
        let parameters, gradient, sums = buffer (), buffer (), buffer ()
        let model, heads, weights = layout c parameters
        let gradientModel, headsGradient, _ = layout c gradient
        let sumsModel, _, _ = layout c sums
        let low = torch.zeros([| count |], dtype = torch.bfloat16)
        let lowModel, lowHeads, _ = layout c low
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

    /// The state trained by the fused step: the same values, its tensors views of flat buffers (see buffersOf).
    let prepare (s: TrainerState) : TrainerState =
        let b = buffersOf s
        // The accumulators are the buffers' own; the step count is the state's (it moves on after adopt).
        { s with Model = b.Model; Optimizer = { b.Optimizer with Steps = s.Optimizer.Steps } }

    let private parts (m: VaeModel) =
        match m.Decoder with
        | BernoulliDecoder p -> m.Encoder.Hidden, p.Hidden, p.Logits
        | _ -> invalidOp "the fused AEVB step needs a Bernoulli MLP decoder"

    /// The N(0, I) weight prior's gradient, -theta on the weights scaled by M/N (the paper's code), added to b.Gradient.
    let private addWeightPrior (c: AevbConfig) (n: int64) (m: int64) (b: FusedBuffers) =
        if c.WeightPrior then
            b.Gradient.narrow(0L, 0L, b.WeightCount).add_(b.Parameters.narrow(0L, 0L, b.WeightCount), Torch.scalar (-(float m) / float n)) |> ignore

    /// gradient in the model's dtype, every operation through libtorch.
    let private gradientFull (c: AevbConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
        let j = int64 b.Model.Config.LatentDim
        let enc1, dec1, dec2 = parts b.Model
        let genc1, gdec1, gdec2 = parts b.GradientModel
        // a W^T + bias.
        let affine (a: Tensor) (w: Tensor) (bias: Tensor) = torch.addmm(bias, a, w.t(), 1.0f, 1.0f)
        // target <- a^T bm (a weight's gradient).
        let outer (target: Tensor) (a: Tensor) (bm: Tensor) = target.addmm_(a.t(), bm, 0.0f, 1.0f) |> ignore
        // Forward (Appendix C): h1 = tanh(W1 x + b1); [mu, log sigma^2] = W h1 + b; z = mu + sigma eps;
        // h2 = tanh(W4 z + b4); logits = W5 h2 + b5.
        let h1 = (affine x enc1.Weight enc1.Bias).tanh_()
        let heads = affine h1 b.Heads.Weight b.Heads.Bias
        let mu, logVar = heads.narrow(1L, 0L, j), heads.narrow(1L, j, j)
        let sd = logVar.mul(Torch.scalar 0.5).exp_()
        let variance = sd.square()
        let z = torch.addcmul(mu, sd, eps, Torch.scalar 1.0)
        let h2 = (affine z dec1.Weight dec1.Bias).tanh_()
        let logits = affine h2 dec2.Weight dec2.Bias
        // The bound (eq. 7): log p(x|z) = -BCE(logits, x); -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (Appendix B).
        let negLogLikelihood = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction = torch.nn.Reduction.Sum)
        let kl = ((mu.square() + variance - logVar).sum() - float (mu.numel())) * 0.5
        let meanBound = (negLogLikelihood + kl).neg_().div_(Torch.scalar (float x.shape.[0]))
        // Backward. d/dlogits = x - sigmoid(logits).
        let dLogits = torch.sub(x, logits.sigmoid())
        outer gdec2.Weight dLogits h2
        gdec2.Bias.copy_(dLogits.sum(0L)) |> ignore
        // Through tanh: da = dh (1 - h^2).
        let dh2 = dLogits.mm(dec2.Weight)
        let da2 = torch.addcmul(dh2, dh2, h2.square(), Torch.scalar -1.0)
        outer gdec1.Weight da2 z
        gdec1.Bias.copy_(da2.sum(0L)) |> ignore
        let dz = da2.mm(dec1.Weight)
        // Heads: d/dmu = dz - mu; d/dlog sigma^2 = dz eps sigma / 2 + (1 - sigma^2) / 2.
        let dHeads = torch.empty_like(heads)
        dHeads.narrow(1L, 0L, j).copy_(dz).sub_(mu) |> ignore
        dHeads.narrow(1L, j, j).copy_(dz).mul_(eps).mul_(sd).sub_(variance).add_(Torch.scalar 1.0).mul_(Torch.scalar 0.5) |> ignore
        outer b.HeadsGradient.Weight dHeads h1
        b.HeadsGradient.Bias.copy_(dHeads.sum(0L)) |> ignore
        let dh1 = dHeads.mm(b.Heads.Weight)
        let da1 = torch.addcmul(dh1, dh1, h1.square(), Torch.scalar -1.0)
        outer genc1.Weight da1 x
        genc1.Bias.copy_(da1.sum(0L)) |> ignore
        addWeightPrior c n x.shape.[0] b
        meanBound

    /// gradient with bfloat16 multiply operands: libtorch multiplies, and everything between the multiplies in one
    /// pass per layer (Kernels), in float32.
    let private gradientMixed (c: AevbConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
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
    let gradient (c: AevbConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
        use _ = torch.no_grad ()
        if c.MixedPrecision then gradientMixed c n b x eps else gradientFull c n b x eps

    /// One step of Algorithm 1 (as Aevb.step: same minibatch and noise draws, same Adagrad, same finiteness check)
    /// on the buffers of a state from prepare. Returns the new state (whose tensors stay views of the buffers) and the mean bound.
    let step (c: AevbConfig) (data: Tensor) (g: torch.Generator) (b: FusedBuffers) (s: TrainerState) : TrainerState * float =
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

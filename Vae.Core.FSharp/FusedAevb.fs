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
      HeadsGradient: Linear }

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
          HeadsGradient = headsGradient }

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

    /// Writes into b.Gradient the gradient of the objective sum_i L^B(x_i, eps_i) + (M/N) log p(theta) (the weight
    /// prior when on) for minibatch x [M; D] and noise eps [M; J]; returns the minibatch's mean bound as a 0-d tensor.
    /// With c.MixedPrecision the matrix multiplies take bfloat16 operands (their results are rounded to bfloat16 and
    /// widened again); everything else, and every value kept between steps, stays in the model's dtype.
    let gradient (c: AevbConfig) (n: int64) (b: FusedBuffers) (x: Tensor) (eps: Tensor) : Tensor =
        use _ = torch.no_grad ()
        let j = int64 b.Model.Config.LatentDim
        let dtype = b.Model.Config.DType
        let enc1, dec1, dec2 = parts b.Model
        let genc1, gdec1, gdec2 = parts b.GradientModel
        // Matrix-multiply operands: the parameters themselves, or their bfloat16 copies (one cast of the flat buffer).
        let low = if c.MixedPrecision then Some(layout b.Model.Config (b.Parameters.to_type(torch.bfloat16))) else None
        let operand (t: Tensor) = if c.MixedPrecision then t.to_type(torch.bfloat16) else t
        let widen (t: Tensor) = if c.MixedPrecision then t.to_type(dtype) else t
        let lowModel, lowHeads = match low with Some(m, h, _) -> m, h | None -> b.Model, b.Heads
        let lenc1, ldec1, ldec2 = parts lowModel
        // a W^T + bias.
        let affine (a: Tensor) (w: Tensor) (bias: Tensor) =
            if c.MixedPrecision then torch.mm(a, w.t()).to_type(dtype).add_(bias) else torch.addmm(bias, a, w.t(), 1.0f, 1.0f)
        // target <- a^T bm (a weight's gradient).
        let outer (target: Tensor) (a: Tensor) (bm: Tensor) =
            if c.MixedPrecision then target.copy_(torch.mm(a.t(), bm)) |> ignore else target.addmm_(a.t(), bm, 0.0f, 1.0f) |> ignore
        let xL = operand x
        // Forward (Appendix C): h1 = tanh(W1 x + b1); [mu, log sigma^2] = W h1 + b; z = mu + sigma eps;
        // h2 = tanh(W4 z + b4); logits = W5 h2 + b5.
        let h1 = (affine xL lenc1.Weight enc1.Bias).tanh_()
        let h1L = operand h1
        let heads = affine h1L lowHeads.Weight b.Heads.Bias
        let mu, logVar = heads.narrow(1L, 0L, j), heads.narrow(1L, j, j)
        let sd = logVar.mul(Torch.scalar 0.5).exp_()
        let variance = sd.square()
        let z = torch.addcmul(mu, sd, eps, Torch.scalar 1.0)
        let zL = operand z
        let h2 = (affine zL ldec1.Weight dec1.Bias).tanh_()
        let h2L = operand h2
        let logits = affine h2L ldec2.Weight dec2.Bias
        // The bound (eq. 7): log p(x|z) = -BCE(logits, x); -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (Appendix B).
        let negLogLikelihood = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction = torch.nn.Reduction.Sum)
        let kl = ((mu.square() + variance - logVar).sum() - float (mu.numel())) * 0.5
        let meanBound = (negLogLikelihood + kl).neg_().div_(Torch.scalar (float x.shape.[0]))
        // Backward. d/dlogits = x - sigmoid(logits).
        let dLogitsFull = torch.sub(x, logits.sigmoid())
        let dLogits = operand dLogitsFull
        outer gdec2.Weight dLogits h2L
        gdec2.Bias.copy_(dLogitsFull.sum(0L)) |> ignore
        // Through tanh: da = dh (1 - h^2).
        let dh2 = widen (dLogits.mm(ldec2.Weight))
        let da2 = torch.addcmul(dh2, dh2, h2.square(), Torch.scalar -1.0)
        let da2L = operand da2
        outer gdec1.Weight da2L zL
        gdec1.Bias.copy_(da2.sum(0L)) |> ignore
        let dz = widen (da2L.mm(ldec1.Weight))
        // Heads: d/dmu = dz - mu; d/dlog sigma^2 = dz eps sigma / 2 + (1 - sigma^2) / 2.
        let dHeads = torch.empty_like(heads)
        dHeads.narrow(1L, 0L, j).copy_(dz).sub_(mu) |> ignore
        dHeads.narrow(1L, j, j).copy_(dz).mul_(eps).mul_(sd).sub_(variance).add_(Torch.scalar 1.0).mul_(Torch.scalar 0.5) |> ignore
        let dHeadsL = operand dHeads
        outer b.HeadsGradient.Weight dHeadsL h1L
        b.HeadsGradient.Bias.copy_(dHeads.sum(0L)) |> ignore
        let dh1 = widen (dHeadsL.mm(lowHeads.Weight))
        let da1 = torch.addcmul(dh1, dh1, h1.square(), Torch.scalar -1.0)
        outer genc1.Weight (operand da1) xL
        genc1.Bias.copy_(da1.sum(0L)) |> ignore
        // The N(0, I) weight prior: gradient -theta on the weights, scaled by M/N (the paper's code).
        if c.WeightPrior then
            b.Gradient.narrow(0L, 0L, b.WeightCount).add_(b.Parameters.narrow(0L, 0L, b.WeightCount), Torch.scalar (-(float x.shape.[0]) / float n)) |> ignore
        meanBound

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

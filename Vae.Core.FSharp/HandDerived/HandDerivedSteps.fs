namespace Vae.Core

open Vae
open TorchSharp

/// The bfloat16 operands of the mixed-precision step: the parameter vector cast at the start of each step, and its
/// views laid out as the model (and the encoder's two heads as one layer).
type internal LowPrecisionOperands = { Parameters: Tensor; Model: VaeModel; Heads: Linear }

/// The scratch of the hand-derived steps for one configuration: the gradient, a vector laid out as the model's
/// parameter vector (with the same views), and the mixed-precision step's bfloat16 operands. A run's fit makes one and
/// disposes it; it holds no parameters and no optimiser state.
type internal FusedWorkspace =
    { /// The objective's gradient [P], laid out as VaeModel.ParameterVector; written by HandDerivedSteps.gradient.
      Gradient: Tensor
      /// The gradient as a model of views (same structure as the model).
      GradientModel: VaeModel
      /// The encoder's heads and the decoder's output layer as one layer each (views of Gradient).
      HeadsGradient: Linear
      OutputGradient: Linear
      /// Present when the workspace was made for mixed precision.
      Low: LowPrecisionOperands option
      /// Where each parameter lives in the vectors (VaeModel.layout of the configuration), computed once.
      Layout: ParameterLayout }
    interface System.IDisposable with
        member w.Dispose() =
            let linears = [ w.HeadsGradient; w.OutputGradient ] @ (w.Low |> Option.map (fun l -> l.Heads) |> Option.toList)
            for l in linears do l.Weight.Dispose(); l.Bias.Dispose()
            VaeModel.dispose w.GradientModel
            w.Low |> Option.iter (fun l -> VaeModel.dispose l.Model)

/// AEVB's step in the paper's settings (estimator B with Appendix B's KL, L = 1, a Gaussian MLP encoder, a Bernoulli
/// or Gaussian MLP decoder), and the wake-sleep step with the same networks, with gradients derived by hand:
/// backpropagation through the MLPs written out, about a third of the operations autograd records, and Adagrad and
/// the weight prior over one flat buffer. Minibatches, noise and fantasies are drawn exactly as Aevb.step and
/// WakeSleep.step draw them, so each follows its autograd step's trajectory up to rounding (the property tests check
/// the gradients against autograd in float64).
[<RequireQualifiedAccess>]
module internal HandDerivedSteps =

    let private bernoulli (m: VaeModel) = match m.Decoder with BernoulliDecoder _ -> true | _ -> false
    let private mlpDecoder (m: VaeModel) = match m.Decoder with BernoulliDecoder _ | GaussianDecoder _ -> true | LinearGaussianDecoder _ -> false
    /// The steps are written out for Appendix C's networks (one tanh layer per MLP) and the paper's Adagrad.
    let private oneTanhLayer (m: VaeModel) = m.Config.HiddenLayers = 1
    let private usesAdagrad (c: LearnerConfig) = match c.Optimizer with AdagradOptimizer _ -> true | AdamOptimizer _ -> false

    /// Whether the step's multiplies are followed by one-pass kernels (Kernels) and Adagrad's one-pass update: with
    /// bfloat16 multiplies (mixed precision), or float32 ones (GradientChoice.OnePass).
    let private onePass (c: LearnerConfig) = c.MixedPrecision || c.Gradient = OnePass

    /// Whether the fused AEVB step computes this configuration (otherwise use Aevb.step): estimator B with L = 1 and an
    /// MLP decoder, one tanh layer per MLP, Adagrad; the one-pass steps (mixed precision, OnePass) only for a Bernoulli
    /// decoder in float32.
    let supports (c: LearnerConfig) (m: VaeModel) : bool =
        c.Estimator = B && c.Samples = 1 && mlpDecoder m && oneTanhLayer m && usesAdagrad c
        && (not (onePass c) || (m.Config.DType = torch.float32 && bernoulli m))

    /// Whether the fused wake-sleep step computes this configuration (otherwise use WakeSleep.step): an MLP decoder,
    /// one tanh layer per MLP, Adagrad, no one-pass step, both phases' gradients before either update.
    let supportsWakeSleep (c: LearnerConfig) (m: VaeModel) : bool =
        mlpDecoder m && oneTanhLayer m && usesAdagrad c && not (onePass c) && c.WakeSleepOrder = GradientsFirst

    /// Raises ArgumentException, naming what differs, when a one-pass step is asked of a setting it lacks.
    let requireSupported (c: LearnerConfig) (m: VaeModel) =
        if onePass c && not (supports c m) then
            invalidArg (if c.MixedPrecision then "MixedPrecision" else "Gradient")
                (sprintf "%s needs estimator B, one sample per datapoint, a Bernoulli decoder, one tanh layer per MLP, Adagrad and float32; got estimator %A, L = %d, %A, %d tanh layers, %s, %O"
                    (if c.MixedPrecision then "mixed precision" else "the one-pass step")
                    c.Estimator c.Samples m.Config.Likelihood m.Config.HiddenLayers (Optimizer.name c.Optimizer) m.Config.DType)

    /// The encoder's mean and log-variance heads as one layer of 2J outputs, and the decoder's output layer as one (its
    /// logits, or its mean and log-variance heads as one layer of 2D outputs): views of a vector laid out as the model's.
    let private joinedLayers (l: ParameterLayout) (c: ModelConfig) (v: Tensor) : Linear * Linear =
        let d, h, j = int64 c.InputDim, int64 c.HiddenUnits, int64 c.LatentDim
        let take name (shape: int64[]) =
            use run = v.narrow(0L, l.OffsetOf name, Array.fold (*) 1L shape)
            run.view(shape)
        let output, outputs = if c.Likelihood = Bernoulli then "decoder.logits", d else "decoder.mean", 2L * d
        { Weight = take "encoder.mean.weight" [| 2L * j; h |]; Bias = take "encoder.mean.bias" [| 2L * j |] },
        { Weight = take (output + ".weight") [| outputs; h |]; Bias = take (output + ".bias") [| outputs |] }

    /// The scratch for the hand-derived steps of models with configuration m under settings c (see FusedWorkspace).
    let workspace (c: LearnerConfig) (m: ModelConfig) : FusedWorkspace =
        if m.Likelihood = LinearGaussian then invalidArg "m" "the fused steps need an MLP decoder (Bernoulli or Gaussian)"
        if m.HiddenLayers <> 1 then invalidArg "m" (sprintf "the fused steps are written for one tanh layer per MLP, not %d" m.HiddenLayers)
        let layout = VaeModel.layout m
        let count = layout.Count
        let gradient = torch.zeros([| count |], dtype = m.DType)
        let headsGradient, outputGradient = joinedLayers layout m gradient
        let low =
            if c.MixedPrecision then
                let v = torch.zeros([| count |], dtype = torch.bfloat16)
                Some { Parameters = v; Model = VaeModel.ofVector { m with DType = torch.bfloat16 } v; Heads = fst (joinedLayers layout m v) }
            else None
        { Gradient = gradient; GradientModel = VaeModel.ofVector m gradient; HeadsGradient = headsGradient; OutputGradient = outputGradient; Low = low; Layout = layout }

    /// Whether the state's optimiser keeps one accumulator (and, for Adam, one first moment) for the whole parameter
    /// vector, as the fused steps update it.
    let flat (s: TrainerState) =
        s.Optimizer.SumSquares.Length = 1 && s.Optimizer.SumSquares.[0].shape = s.Model.ParameterVector.shape

    /// The state the fused steps train: the same model, and the optimiser's accumulators (Adagrad's sums, Adam's two
    /// moments) gathered into vectors laid out as the parameter vector (a state already so is returned as it is).
    let prepare (s: TrainerState) : TrainerState =
        if not (mlpDecoder s.Model) then invalidArg "s" "the fused steps need an MLP decoder (Bernoulli or Gaussian)"
        if flat s then s
        else
            let gathered (ts: Tensor[]) = if ts.Length = 0 then ts else [| VaeModel.vectorOf s.Model.Config ts |]
            { s with Optimizer = { s.Optimizer with SumSquares = gathered s.Optimizer.SumSquares; FirstMoments = gathered s.Optimizer.FirstMoments } }

    let private byParameter (s: TrainerState) (ts: Tensor[]) =
        if flat s && ts.Length = 1 then VaeModel.tensors (VaeModel.ofVector s.Model.Config ts.[0]) else ts

    /// The optimiser's accumulators of a state one per parameter tensor (in the order of VaeModel.parameters): views of
    /// the vector of a state that prepare made, else the state's own.
    let sumSquaresByParameter (s: TrainerState) : Tensor[] = byParameter s s.Optimizer.SumSquares

    /// Adam's first moments one per parameter tensor, as sumSquaresByParameter (none under Adagrad).
    let firstMomentsByParameter (s: TrainerState) : Tensor[] = byParameter s s.Optimizer.FirstMoments

    let private requirePrepared (s: TrainerState) (w: FusedWorkspace) =
        if not (flat s) || w.Gradient.shape <> s.Model.ParameterVector.shape || w.Gradient.dtype <> s.Model.Config.DType then
            invalidArg "s" "the fused steps train a state from HandDerivedSteps.prepare with a workspace made for its model's configuration"

    /// One step's operands: the state's model with its joined layers (views of its vector) and the workspace.
    type private Operands =
        { Model: VaeModel
          Parameters: Tensor
          WeightCount: int64
          Heads: Linear
          Output: Linear
          Gradient: Tensor
          GradientModel: VaeModel
          HeadsGradient: Linear
          OutputGradient: Linear
          Low: LowPrecisionOperands option
          Layout: ParameterLayout }

    let private operands (w: FusedWorkspace) (m: VaeModel) : Operands =
        let heads, output = joinedLayers w.Layout m.Config m.ParameterVector
        { Model = m; Parameters = m.ParameterVector; WeightCount = w.Layout.WeightCount; Heads = heads; Output = output
          Gradient = w.Gradient; GradientModel = w.GradientModel; HeadsGradient = w.HeadsGradient; OutputGradient = w.OutputGradient; Low = w.Low
          Layout = w.Layout }

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
    let private addWeightPrior (c: LearnerConfig) (n: int64) (m: int64) (b: Operands) =
        if c.WeightPrior then
            b.Gradient.narrow(0L, 0L, b.WeightCount).add_(b.Parameters.narrow(0L, 0L, b.WeightCount), Torch.constant (-(float m) / float n)) |> ignore

    // a W^T + bias.
    let affine (a: Tensor) (w: Tensor) (bias: Tensor) = torch.addmm(bias, a, w.t(), 1.0f, 1.0f)
    // target <- a^T bm (a weight's gradient).
    let private outer (target: Tensor) (a: Tensor) (bm: Tensor) = target.addmm_(a.t(), bm, 0.0f, 1.0f) |> ignore
    // Through tanh: da = dh (1 - h^2).
    let throughTanh (dh: Tensor) (h: Tensor) = torch.addcmul(dh, dh, h.pow(Torch.two), Torch.constant -1.0)

    /// The encoder's forward pass (Appendix C.2): h1 = tanh(W1 x + b1) and the heads [mu, log sigma^2] = W h1 + b [M; 2J].
    let private encoderForward (b: Operands) (x: Tensor) =
        let h1 = (affine x b.Model.Encoder.Hidden.Weight b.Model.Encoder.Hidden.Bias).tanh_()
        h1, affine h1 b.Heads.Weight b.Heads.Bias

    /// The encoder's gradient from the gradient dHeads of its heads, written into b.Gradient.
    let private encoderBackward (b: Operands) (x: Tensor) (h1: Tensor) (dHeads: Tensor) =
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
    let private decoderPass (b: Operands) (z: Tensor) (x: Tensor) (withDz: bool) : Tensor * Tensor option =
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
                if b.Model.Config.Likelihood = GaussianSigmoidMean then dMean.mul_(mean).mul_(mean.neg().add_(Torch.constant 1.0, Torch.one)) |> ignore
                dOut.narrow(1L, d, d).copy_(diff).mul_(r).sub_(Torch.constant 1.0).mul_(Torch.constant 0.5) |> ignore
                // -log N(x; mean, s^2) = (log s^2 + (x - mean)^2 / s^2 + log 2 pi) / 2, summed.
                let nll = Torch.timesNumber (Torch.plusNumber (logVar.sum().add(diff.mul(r).sum(), Torch.one)) (float (diff.numel()) * System.Math.Log(2.0 * System.Math.PI))) 0.5
                nll, dOut
        outer b.OutputGradient.Weight dOut h2
        b.OutputGradient.Bias.copy_(dOut.sum(0L)) |> ignore
        let da2 = throughTanh (dOut.mm(b.Output.Weight)) h2
        outer gdec1.Weight da2 z
        gdec1.Bias.copy_(da2.sum(0L)) |> ignore
        negLogLikelihood, (if withDz then Some(da2.mm(dec1.Weight)) else None)

    /// gradient in the model's dtype, every operation through libtorch.
    let private gradientFull (c: LearnerConfig) (n: int64) (b: Operands) (x: Tensor) (eps: Tensor) : Tensor =
        let j = int64 b.Model.Config.LatentDim
        // Forward (Appendix C): h1 = tanh(W1 x + b1); [mu, log sigma^2] = W h1 + b; z = mu + sigma eps; then the decoder.
        let h1, heads = encoderForward b x
        let mu, logVar = heads.narrow(1L, 0L, j), heads.narrow(1L, j, j)
        let sd = logVar.mul(Torch.constant 0.5).exp_()
        let variance = sd.pow(Torch.two)
        let z = torch.addcmul(mu, sd, eps, Torch.constant 1.0)
        // The bound (eq. 7): log p(x|z) - KL, with -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2) (Appendix B).
        let negLogLikelihood, dz = decoderPass b z x true
        let kl = Torch.timesNumber (Torch.plusNumber ((mu.pow(Torch.two).add(variance, Torch.one) - logVar).sum()) (-(float (mu.numel())))) 0.5
        let meanBound = negLogLikelihood.add(kl, Torch.one).neg_().div_(Torch.constant (float x.shape.[0]))
        // Heads: d/dmu = dz - mu; d/dlog sigma^2 = dz eps sigma / 2 + (1 - sigma^2) / 2.
        let dz = dz.Value
        let dHeads = torch.empty_like(heads)
        dHeads.narrow(1L, 0L, j).copy_(dz).sub_(mu) |> ignore
        dHeads.narrow(1L, j, j).copy_(dz).mul_(eps).mul_(sd).sub_(variance).add_(Torch.constant 1.0, Torch.one).mul_(Torch.constant 0.5) |> ignore
        encoderBackward b x h1 dHeads
        addWeightPrior c n x.shape.[0] b
        meanBound

    /// gradient with libtorch's multiplies and everything between them in one pass per layer (Kernels), in float32:
    /// with bfloat16 multiply operands where the workspace has them (mixed precision), else the float32 parameters
    /// themselves (OnePass). With withPrior false the weight prior's term is left to the caller (the one-pass Adagrad
    /// update adds it in its own pass: Adagrad.ascendOnePassWithPrior).
    let private gradientOnePass (withPrior: bool) (c: LearnerConfig) (n: int64) (b: Operands) (x: Tensor) (eps: Tensor) : Tensor =
        let m, d = x.shape.[0], x.shape.[1]
        let h, j = int64 b.Model.Config.HiddenUnits, int64 b.Model.Config.LatentDim
        let enc1, dec1, dec2 = parts b.Model
        let genc1, gdec1, gdec2 = parts b.GradientModel
        // The multiplies' operands: one cast of the parameter vector into the buffer laid out as the model, or the model.
        let operands, lowHeads, operandType =
            match b.Low with
            | Some l ->
                l.Parameters.copy_(b.Parameters) |> ignore
                l.Model, l.Heads, torch.bfloat16
            | None -> b.Model, b.Heads, torch.float32
        let widened = b.Low.IsSome
        let lenc1, ldec1, ldec2 = parts operands
        let low (shape: int64[]) = torch.empty(shape, dtype = operandType)
        let full (shape: int64[]) = torch.empty(shape, dtype = torch.float32)
        // An activation and its multiply operand: two buffers where the operand is rounded, one where it is not.
        let pair (shape: int64[]) = let f = full shape in f, (if widened then low shape else f)
        // target <- a^T bm (a weight's gradient), widened into the float32 buffer where the product is bfloat16.
        let outer (target: Tensor) (a: Tensor) (bm: Tensor) =
            if widened then target.copy_(torch.mm(a.t(), bm)) |> ignore else target.addmm_(a.t(), bm, 0.0f, 1.0f) |> ignore
        let eps, x = eps.contiguous(), x.contiguous()
        // Forward (Appendix C), as gradientFull.
        let xL = if widened then x.to_type(torch.bfloat16) else x
        let h1, h1L = pair [| m; h |]
        Kernels.tanhLayer (torch.mm(xL, lenc1.Weight.t())) enc1.Bias h1 h1L
        let latent, zL = full [| m; 2L * j |], low [| m; j |]
        let kl = Kernels.latentForward (torch.mm(h1L, lowHeads.Weight.t())) b.Heads.Bias eps latent zL
        let h2, h2L = pair [| m; h |]
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
        if withPrior then addWeightPrior c n m b
        torch.tensor(-(negLogLikelihood + kl) / float m, dtype = torch.float32)

    /// Writes into w.Gradient the gradient, for model m, of the objective sum_i L^B(x_i, eps_i) + (M/N) log p(theta) (the weight
    /// prior when on) for minibatch x [M; D] and noise eps [M; J]; returns the minibatch's mean bound as a 0-d tensor.
    /// With c.MixedPrecision the matrix multiplies take bfloat16 operands (their results are rounded to bfloat16 and
    /// widened again), and the work between them runs in Kernels; everything else, and every value kept between steps,
    /// stays in float32. With c.Gradient = OnePass the multiplies stay float32 and the work between them runs in Kernels.
    let gradient (c: LearnerConfig) (n: int64) (w: FusedWorkspace) (m: VaeModel) (x: Tensor) (eps: Tensor) : Tensor =
        use _ = torch.no_grad ()
        let b = operands w m
        if onePass c then gradientOnePass true c n b x eps else gradientFull c n b x eps

    /// One step of Algorithm 1 (as Aevb.step: same minibatch and noise draws, same Adagrad, same finiteness check) on a
    /// state from prepare, in place on its parameter vector. Returns the new state and the minibatch's mean bound.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (w: FusedWorkspace) (s: TrainerState) : TrainerState * float =
        requirePrepared s w
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let b = operands w s.Model
        let x = Learner.minibatchAt c data g s.Optimizer.Steps
        let eps = ElboEstimator.noise c.Samples c.BatchSize s.Model g
        // The one-pass float32 step leaves the weight prior to its Adagrad pass; the bfloat16 step keeps its own pass
        // (its recorded trajectories).
        let foldPrior = c.Gradient = OnePass && not c.MixedPrecision
        let meanBound = (if onePass c then gradientOnePass (not foldPrior) else gradientFull) c data.shape.[0] b x (eps.squeeze(0L))
        // Finiteness from the bound and the biases' gradients alone: each bias gradient sums one layer's backpropagated
        // signal, and each weight gradient multiplies such a signal by finite activations (tanh, x, or z, finite when
        // the bound is), so a NaN or infinity anywhere shows in these; it saves a pass over every parameter.
        let bound = Learner.requireFinite s.Optimizer.Steps meanBound [| b.Gradient.narrow(0L, b.WeightCount, b.Gradient.shape.[0] - b.WeightCount) |]
        // The hand-derived float32 step keeps libtorch's Adagrad, so its trajectory stays Aevb.step's (and the recorded
        // results'); the one-pass steps, which round differently by design, take the one-pass update (a quarter of the
        // memory traffic).
        let adagrad = Optimizer.adagrad c.Optimizer
        let opt =
            if foldPrior then
                let priorScale = if c.WeightPrior then -(float x.shape.[0]) / float data.shape.[0] else 0.0
                Adagrad.ascendOnePassWithPrior adagrad s.Optimizer b.Parameters b.Gradient priorScale b.WeightCount
            elif onePass c then Adagrad.ascendOnePass adagrad s.Optimizer b.Parameters b.Gradient
            else Adagrad.ascend adagrad s.Optimizer [| b.Parameters |] [| b.Gradient |]
        { s with Optimizer = opt }, bound

    /// Where WakeSleepVariant.scaledParameter lives in the vectors: offset and element count.
    let private scaledBlock (b: Operands) =
        let c = b.Model.Config
        b.Layout.OffsetOf WakeSleepVariant.scaledParameter, int64 c.HiddenUnits * int64 c.LatentDim

    /// wakeSleepGradient on one step's operands.
    let private wakeSleepGradientOf (c: LearnerConfig) (n: int64) (b: Operands) (x: Tensor) (eps: Tensor) (zp: Tensor) (xp: Tensor) : Tensor * Tensor =
        let j = int64 b.Model.Config.LatentDim
        // Wake: the decoder's gradient at z from the recognition model.
        let _, heads = encoderForward b x
        let logVar = heads.narrow(1L, j, j)
        let z = torch.addcmul(heads.narrow(1L, 0L, j), logVar.mul(Torch.constant 0.5).exp_(), eps, Torch.constant 1.0)
        let negLogLikelihood, _ = decoderPass b z x false
        // log p(x|z) + log p(z) - log q(z|x) = log p(x|z) + (sum log sigma^2 + |eps|^2 - |z|^2) / 2 (the 2 pi terms cancel).
        let meanBound = (Torch.timesNumber (logVar.sum().add(eps.pow(Torch.two).sum(), Torch.one) - z.pow(Torch.two).sum()) 0.5 - negLogLikelihood).div_(Torch.constant (float x.shape.[0]))
        // Sleep: log N(zp; mu, sigma^2) at the fantasies; d/dmu = (zp - mu) / sigma^2, d/dlog sigma^2 = ((zp - mu)^2 / sigma^2 - 1) / 2.
        let h1, fantasyHeads = encoderForward b xp
        let fantasyLogVar = fantasyHeads.narrow(1L, j, j)
        let diff = torch.sub(zp, fantasyHeads.narrow(1L, 0L, j))
        let r = diff.mul(fantasyLogVar.neg().exp())
        let dHeads = torch.empty_like(fantasyHeads)
        dHeads.narrow(1L, 0L, j).copy_(r) |> ignore
        dHeads.narrow(1L, j, j).copy_(diff).mul_(r).sub_(Torch.constant 1.0).mul_(Torch.constant 0.5) |> ignore
        let sleep = Torch.timesNumber (Torch.plusNumber (fantasyLogVar.sum().add(diff.mul(r).sum(), Torch.one)) (float (diff.numel()) * System.Math.Log(2.0 * System.Math.PI))) -0.5
        encoderBackward b xp h1 dHeads
        addWeightPrior c n x.shape.[0] b
        // anglepy's recognition model: precision 99 more on its scaled log-variance weights (WakeSleepVariant).
        if c.WeightPrior && WakeSleepVariant.scales c.WakeSleep then
            let offset, count = scaledBlock b
            b.Gradient.narrow(0L, offset, count).add_(b.Parameters.narrow(0L, offset, count),
                                                      Torch.constant (-(WakeSleepVariant.extraPrecision c.WakeSleep) * float x.shape.[0] / float n)) |> ignore
        meanBound, sleep

    /// Writes into w.Gradient the gradient of WakeSleep.step's objectives for model m, derived by hand: the wake phase's
    /// sum log p(x, z) for z = mu + sigma eps from q(z|x) (held fixed) with respect to the decoder; the sleep phase's
    /// sum log q(zp|xp) for fantasies (zp, xp) ~ p with respect to the encoder; and the weight prior's, (M/N) log p(theta)
    /// over every weight, when on. Returns the minibatch's mean bound log p(x, z) - log q(z|x) and the sleep objective.
    let wakeSleepGradient (c: LearnerConfig) (n: int64) (w: FusedWorkspace) (m: VaeModel) (x: Tensor) (eps: Tensor) (zp: Tensor) (xp: Tensor) : Tensor * Tensor =
        use _ = torch.no_grad ()
        wakeSleepGradientOf c n (operands w m) x eps zp xp

    /// One wake-sleep step (as WakeSleep.step: the same minibatch, noise and fantasy draws in the same order, both
    /// gradients taken before either update, one Adagrad step over every parameter) on the buffers of a state from
    /// prepare. Raises NonFiniteBoundException before any update when a value or gradient is not finite.
    let wakeSleepStep (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (w: FusedWorkspace) (s: TrainerState) : TrainerState * float =
        requirePrepared s w
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        let b = operands w s.Model
        let m = s.Model
        let x = Learner.minibatchAt c data g s.Optimizer.Steps
        let eps = ElboEstimator.noise 1 c.BatchSize m g
        let zp = torch.randn([| int64 c.BatchSize; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g)
        // Bernoulli draws refuse probabilities that are not numbers: a decoder gone non-finite is reported as such.
        let xp =
            try WakeSleepVariant.fantasies c.WakeSleep m zp g
            with :? System.Runtime.InteropServices.ExternalException when (VaeModel.decoderParameters m |> List.exists (fun p -> not (p.Tensor.isfinite().all().item<bool> ()))) ->
                raise (NonFiniteBoundException(s.Optimizer.Steps, nan))
        let meanBound, sleep = wakeSleepGradientOf c data.shape.[0] b x (eps.squeeze(0L)) zp xp
        // As in step: the bias gradients carry every layer's backpropagated signal; the sleep objective and the
        // fantasies cover the sleep phase's inputs.
        let biases = b.Gradient.narrow(0L, b.WeightCount, b.Gradient.shape.[0] - b.WeightCount)
        let bound = Learner.requireFinite s.Optimizer.Steps meanBound [| biases; sleep; xp |]
        let adagrad = Optimizer.adagrad c.Optimizer
        let opt =
            if WakeSleepVariant.scales c.WakeSleep then
                // Three runs of the vector: before the scaled log-variance weights, those (their own settings), after.
                let offset, count = scaledBlock b
                let runs (t: Tensor) = [| t.narrow(0L, 0L, offset); t.narrow(0L, offset, count); t.narrow(0L, offset + count, t.shape.[0] - offset - count) |]
                let settings = [| adagrad; WakeSleepVariant.adagradFor c.WakeSleep adagrad WakeSleepVariant.scaledParameter; adagrad |]
                let stepped = Adagrad.ascendEach settings { s.Optimizer with SumSquares = runs s.Optimizer.SumSquares.[0] } (runs b.Parameters) (runs b.Gradient)
                { stepped with SumSquares = s.Optimizer.SumSquares }
            else Adagrad.ascend adagrad s.Optimizer [| b.Parameters |] [| b.Gradient |]
        { s with Optimizer = opt }, bound

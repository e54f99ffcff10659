namespace Vae.Core

open System
open TorchSharp

/// The decoder's likelihood p(x|z).
type Likelihood =
    /// Bernoulli MLP (binary or [0, 1] data: MNIST).
    | Bernoulli
    /// Gaussian MLP with an unconstrained mean.
    | Gaussian
    /// Gaussian MLP whose mean is squashed into (0, 1) by a sigmoid (the paper's Frey Face decoder).
    | GaussianSigmoidMean
    /// Linear-Gaussian decoder N(W z + b, diag sigma^2) (factor analysis): no hidden layer, and an exact
    /// marginal likelihood (LinearGaussian.logMarginal) for checking learners.
    | LinearGaussian

/// The architecture of a model: sizes, likelihood, precision.
type ModelConfig =
    { /// Values per datapoint (784 for MNIST, 560 for Frey Face).
      InputDim: int
      /// Hidden units of every MLP (500 MNIST, 200 Frey Face, 100 for Figure 3).
      HiddenUnits: int
      /// Latent dimensions J.
      LatentDim: int
      Likelihood: Likelihood
      /// float32 or float64.
      DType: torch.ScalarType
      /// Standard deviation of the initial parameters (the paper: 0.01).
      InitStd: float
      /// Tanh layers of HiddenUnits units in every MLP (the paper: 1; Burda et al. 2015: 2). The linear-Gaussian
      /// decoder has none; the encoder still has these.
      HiddenLayers: int }

/// How a model's parameters are first drawn.
type Initialization =
    /// Every weight and bias from N(0, InitStd^2) (the paper, section 5: 0.01).
    | PaperNormal
    /// Every weight matrix [out; in] uniform on +-sqrt(6 / (in + out)) (Glorot and Bengio 2010), every bias 0:
    /// Burda et al.'s code (nnet.Linear.random).
    | GlorotUniform

/// The decoder's output bias at the start of training.
type DecoderOutputBias =
    /// As the initialisation drew it.
    | Drawn
    /// The logit of the training data's per-pixel mean, clipped to [0.001, 0.999], set before the first step
    /// (Burda et al.'s code: datasets.get_train_bias_np); Bernoulli decoders only.
    | TrainingMeanLogit

/// The decoder network.
type Decoder =
    | BernoulliDecoder of BernoulliMlp
    | GaussianDecoder of GaussianMlp
    | LinearGaussianDecoder of LinearGaussian

/// A variational auto-encoder: recognition model q_phi(z|x) (encoder), generative model
/// p_theta(x|z) (decoder) and the prior p(z) = N(0, I). Every parameter lives in one vector; the networks' tensors
/// are named views of it (VaeModel.layout), so whole-model operations (Adagrad, the weight prior) are single passes.
type VaeModel =
    { Config: ModelConfig
      Encoder: GaussianMlp
      Decoder: Decoder
      /// Every parameter [P], laid out as VaeModel.layout says; Encoder's and Decoder's tensors are views of it.
      ParameterVector: Tensor }

/// Where each parameter lives in a model's parameter vector: weights first (the weight prior covers one prefix), then
/// biases; each Gaussian MLP's mean and log-variance heads adjacent (one matrix multiply computes both).
type ParameterLayout =
    { /// Each parameter's name, offset and shape, in the vector's order.
      Blocks: (string * int64 * int64[]) list
      /// Elements [0, WeightCount) are the weights of the N(0, I) prior; the rest are biases (and log-variances).
      WeightCount: int64
      /// P, the length of the vector.
      Count: int64 }
    /// The offset of the named parameter.
    member l.OffsetOf(name: string) = l.Blocks |> List.pick (fun (n, o, _) -> if n = name then Some o else None)

/// A named parameter tensor; IsWeight says whether the N(0, I) weight prior applies (weights, not biases).
type NamedParameter = { Name: string; Tensor: Tensor; IsWeight: bool }

[<RequireQualifiedAccess>]
module VaeModel =

    /// Checks a configuration; raises ArgumentException naming the field.
    let validate (c: ModelConfig) =
        let fail field expected (v: obj) = raise (ArgumentException(sprintf "model %s: expected %s, got %O" field expected v))
        if c.InputDim < 1 then fail "input dimension" "at least 1" c.InputDim
        if c.HiddenUnits < 1 then fail "hidden units" "at least 1" c.HiddenUnits
        if c.HiddenLayers < 1 || c.HiddenLayers > 100 then fail "hidden layers" "from 1 to 100" c.HiddenLayers
        if c.LatentDim < 1 then fail "latent dimensions" "at least 1" c.LatentDim
        if c.DType <> torch.float32 && c.DType <> torch.float64 then fail "dtype" "float32 or float64" c.DType
        if not (c.InitStd > 0.0) then fail "initial standard deviation" "a positive number" c.InitStd

    /// The name of an MLP's i-th tanh layer (from 1): "encoder.hidden" for the first (the paper's one), then
    /// "encoder.hidden2", "encoder.hidden3", ...
    let hiddenName (prefix: string) (i: int) = if i = 1 then prefix + ".hidden" else sprintf "%s.hidden%d" prefix i

    /// The names and shapes of a configuration's parameters, in the order of parameters, computed
    /// without allocating anything (checkpoint readers check a file against them first).
    let parameterShapes (c: ModelConfig) : (string * int64[]) list =
        let d, h, j = int64 c.InputDim, int64 c.HiddenUnits, int64 c.LatentDim
        let linear prefix inputs outputs = [ prefix + ".weight", [| outputs; inputs |]; prefix + ".bias", [| outputs |] ]
        let tanhLayers prefix inputs =
            linear (hiddenName prefix 1) inputs h @ List.concat [ for i in 2 .. c.HiddenLayers -> linear (hiddenName prefix i) h h ]
        let gaussian prefix inputs outputs =
            tanhLayers prefix inputs @ linear (prefix + ".mean") h outputs @ linear (prefix + ".logvar") h outputs
        gaussian "encoder" d j
        @ (match c.Likelihood with
           | Bernoulli -> tanhLayers "decoder" j @ linear "decoder.logits" h d
           | Gaussian | GaussianSigmoidMean -> gaussian "decoder" j d
           | LinearGaussian -> linear "decoder.mean" j d @ [ "decoder.logvar", [| d |] ])

    /// The parameter vector's layout for a configuration: the weights of parameterShapes in their order, then the rest.
    let layout (c: ModelConfig) : ParameterLayout =
        let shapes = parameterShapes c
        let isWeight (name: string) = name.EndsWith ".weight"
        let ordered = List.filter (fst >> isWeight) shapes @ List.filter (fst >> isWeight >> not) shapes
        let blocks, count =
            ordered |> List.mapFold (fun offset (name, shape) -> (name, offset, shape), offset + Array.fold (*) 1L shape) 0L
        { Blocks = blocks
          WeightCount = shapes |> List.filter (fst >> isWeight) |> List.sumBy (snd >> Array.fold (*) 1L)
          Count = count }

    /// A model of configuration c whose networks hold the tensors tensorOf gives for each parameter name (as
    /// parameters names them), with v as its parameter vector: e.g. autograd leaves sharing v's storage.
    let assemble (c: ModelConfig) (tensorOf: string -> Tensor) (v: Tensor) : VaeModel =
        let linear prefix = { Weight = tensorOf (prefix + ".weight"); Bias = tensorOf (prefix + ".bias") }
        let deeper prefix = [ for i in 2 .. c.HiddenLayers -> linear (hiddenName prefix i) ]
        let gaussian prefix =
            { Hidden = linear (prefix + ".hidden"); Deeper = deeper prefix; Mean = linear (prefix + ".mean"); LogVar = linear (prefix + ".logvar") }
        let decoder =
            match c.Likelihood with
            | Bernoulli -> BernoulliDecoder { Hidden = linear "decoder.hidden"; Deeper = deeper "decoder"; Logits = linear "decoder.logits" }
            | Gaussian | GaussianSigmoidMean -> GaussianDecoder(gaussian "decoder")
            | LinearGaussian -> LinearGaussianDecoder { Mean = linear "decoder.mean"; LogVar = tensorOf "decoder.logvar" }
        { Config = c; Encoder = gaussian "encoder"; Decoder = decoder; ParameterVector = v }

    /// The model whose tensors are views of v [P] laid out as layout c says (v is not copied).
    let ofVector (c: ModelConfig) (v: Tensor) : VaeModel =
        let l = layout c
        if v.dim() <> 1L || v.shape.[0] <> l.Count then
            invalidArg "v" (sprintf "a parameter vector of %d elements for this configuration, got shape %A" l.Count v.shape)
        // Each view of a flat run of v (the run's own handle is freed: the view keeps the storage alive).
        let viewOf offset (shape: int64[]) =
            use run = v.narrow(0L, offset, Array.fold (*) 1L shape)
            run.view(shape)
        let views = l.Blocks |> List.map (fun (name, offset, shape) -> name, viewOf offset shape) |> dict
        assemble c (fun name -> views.[name]) v

    let private linear (prefix: string) (l: Linear) =
        [ { Name = prefix + ".weight"; Tensor = l.Weight; IsWeight = true }
          { Name = prefix + ".bias"; Tensor = l.Bias; IsWeight = false } ]

    let private tanhLayers prefix (first: Linear) (deeper: Linear list) =
        linear (prefix + ".hidden") first @ (deeper |> List.mapi (fun i l -> linear (hiddenName prefix (i + 2)) l) |> List.concat)

    let private gaussian prefix (p: GaussianMlp) =
        tanhLayers prefix p.Hidden p.Deeper @ linear (prefix + ".mean") p.Mean @ linear (prefix + ".logvar") p.LogVar

    /// The encoder's parameters phi, in a fixed order.
    let encoderParameters (m: VaeModel) : NamedParameter list = gaussian "encoder" m.Encoder

    /// The decoder's parameters theta, in a fixed order.
    let decoderParameters (m: VaeModel) : NamedParameter list =
        match m.Decoder with
        | BernoulliDecoder p -> tanhLayers "decoder" p.Hidden p.Deeper @ linear "decoder.logits" p.Logits
        | GaussianDecoder p -> gaussian "decoder" p
        | LinearGaussianDecoder p -> linear "decoder.mean" p.Mean @ [ { Name = "decoder.logvar"; Tensor = p.LogVar; IsWeight = false } ]

    /// Every parameter (encoder, then decoder), in a fixed order.
    let parameters (m: VaeModel) : NamedParameter list = encoderParameters m @ decoderParameters m

    /// The parameter tensors, in the order of parameters.
    let tensors (m: VaeModel) : Tensor[] = parameters m |> List.map (fun p -> p.Tensor) |> List.toArray

    /// A new parameter vector holding copies of tensors shaped as a configuration's parameters (in the order of
    /// parameterShapes c), laid out as layout c says.
    let vectorOf (c: ModelConfig) (ts: Tensor seq) : Tensor =
        let v = torch.empty([| (layout c).Count |], dtype = c.DType)
        let views = tensors (ofVector c v)
        use _ = torch.no_grad ()
        Seq.iter2 (fun (view: Tensor) (t: Tensor) -> view.copy_(t) |> ignore) views ts
        for view in views do view.Dispose()
        v

    /// A model whose vector holds copies of the given tensors (in the order of parameterShapes c).
    let ofTensors (c: ModelConfig) (ts: Tensor seq) : VaeModel = ofVector c (vectorOf c ts)

    /// A model with every parameter drawn from N(0, InitStd^2) using generator g (in the order of parameterShapes).
    let create (c: ModelConfig) (g: torch.Generator) : VaeModel =
        validate c
        let encoder = GaussianMlp.init c.HiddenLayers c.InputDim c.HiddenUnits c.LatentDim c.InitStd c.DType g
        let decoder =
            match c.Likelihood with
            | Bernoulli -> BernoulliDecoder(BernoulliMlp.init c.HiddenLayers c.LatentDim c.HiddenUnits c.InputDim c.InitStd c.DType g)
            | Gaussian | GaussianSigmoidMean -> GaussianDecoder(GaussianMlp.init c.HiddenLayers c.LatentDim c.HiddenUnits c.InputDim c.InitStd c.DType g)
            | LinearGaussian -> LinearGaussianDecoder(LinearGaussian.init c.LatentDim c.InputDim c.InitStd c.DType g)
        let drawn = tensors { Config = c; Encoder = encoder; Decoder = decoder; ParameterVector = null }
        let m = ofTensors c drawn
        for t in drawn do t.Dispose()
        m

    /// Redraws the model's parameters as Glorot and Bengio's uniform initialisation (Burda et al.'s code): every weight
    /// matrix [out; in] uniform on +-sqrt(6 / (in + out)) from generator g (in the order of parameters), every bias and
    /// the linear-Gaussian decoder's log-variances 0. The model is changed in place and returned.
    let glorotUniform (g: torch.Generator) (m: VaeModel) : VaeModel =
        use _ = torch.no_grad ()
        for p in parameters m do
            if p.IsWeight then
                let a = sqrt (6.0 / float (p.Tensor.shape.[0] + p.Tensor.shape.[1]))
                use u = torch.rand(p.Tensor.shape, dtype = p.Tensor.dtype, generator = g)
                p.Tensor.copy_(u.mul_(Torch.constant (2.0 * a)).sub_(Torch.constant a)) |> ignore
            else p.Tensor.zero_() |> ignore
        m

    /// The model initialised as i says from generator g: PaperNormal leaves create's draws; GlorotUniform redraws them.
    let initialise (i: Initialization) (g: torch.Generator) (m: VaeModel) : VaeModel =
        match i with
        | PaperNormal -> m
        | GlorotUniform -> glorotUniform g m

    /// Sets a Bernoulli decoder's output bias to the logit of data's per-column mean clipped to [0.001, 0.999] (Burda et
    /// al.'s code), so that the untrained decoder's means are the training set's; in place, returning the model.
    let withOutputBiasAtDataMean (data: Tensor) (m: VaeModel) : VaeModel =
        match m.Decoder with
        | BernoulliDecoder p ->
            if data.dim() <> 2L || data.shape.[1] <> p.Logits.Bias.shape.[0] then
                invalidArg "data" (sprintf "the decoder's output bias needs data [N; %d], got shape %A" p.Logits.Bias.shape.[0] data.shape)
            use _ = torch.no_grad ()
            use mean = data.mean([| 0L |], ``type`` = torch.float64).clamp(Torch.constant 0.001, Torch.constant 0.999)
            use logit = mean.log().sub_(mean.neg().log1p_())
            p.Logits.Bias.copy_(logit) |> ignore
            m
        | _ -> invalidArg "m" "the output bias at the logit of the data's mean is a Bernoulli decoder's"

    /// Makes every parameter a leaf that records gradients (or stops recording).
    let requireGrad (on: bool) (m: VaeModel) : VaeModel =
        for t in tensors m do t.requires_grad_(on) |> ignore
        m

    /// A deep copy of the model's parameters (detached).
    let copy (m: VaeModel) : VaeModel = ofVector m.Config (m.ParameterVector.detach().clone())

    /// Frees the model's native memory: its views and its parameter vector.
    let dispose (m: VaeModel) =
        for t in tensors m do t.Dispose()
        m.ParameterVector.Dispose()

    /// q_phi(z|x): the encoder's Gaussian for data x.
    let encode (m: VaeModel) (x: Tensor) : Distributions.DiagonalGaussian =
        Torch.resolveVectorFunctions ()
        GaussianMlp.apply false m.Encoder x

    /// The Gaussian p(x|z) of a Gaussian decoder (MLP or linear) for latent points z.
    let private gaussianOf (m: VaeModel) (z: Tensor) : Distributions.DiagonalGaussian =
        match m.Decoder with
        | GaussianDecoder p -> GaussianMlp.apply (m.Config.Likelihood = GaussianSigmoidMean) p z
        | LinearGaussianDecoder p -> LinearGaussian.apply p z
        | BernoulliDecoder _ -> invalidOp "a Bernoulli decoder has no Gaussian output"

    /// log p_theta(x|z), summed over the data dimension; z may carry extra leading sample dimensions.
    let logLikelihood (m: VaeModel) (z: Tensor) (x: Tensor) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p -> Distributions.bernoulliLogProbability (BernoulliMlp.logits p z) x
        | GaussianDecoder _ | LinearGaussianDecoder _ -> Distributions.gaussianLogDensity (gaussianOf m z) x

    /// The decoder's mean E[x|z] (Bernoulli probabilities or Gaussian means).
    let decodeMean (m: VaeModel) (z: Tensor) : Tensor =
        Torch.resolveVectorFunctions ()
        match m.Decoder with
        | BernoulliDecoder p -> (BernoulliMlp.logits p z).sigmoid()
        | GaussianDecoder _ | LinearGaussianDecoder _ -> (gaussianOf m z).Mean

    // x = mean + sigma eps for a Gaussian decoder's p(x|z).
    let private drawGaussian (m: VaeModel) (z: Tensor) (g: torch.Generator) : Tensor =
        let q = gaussianOf m z
        Distributions.reparameterise q (torch.randn(q.Mean.shape, dtype = q.Mean.dtype, generator = g))

    /// Draws x ~ p(x|z) for latent points z: Bernoulli draws, or Gaussian draws (clipped to [0, 1] for the
    /// sigmoid-mean decoder, as the paper's code clips the samples of its DLVM models; the means are not clipped).
    let sampleData (m: VaeModel) (z: Tensor) (g: torch.Generator) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p -> torch.bernoulli((BernoulliMlp.logits p z).sigmoid(), generator = g)
        | GaussianDecoder _ | LinearGaussianDecoder _ ->
            let x = drawGaussian m z g
            if m.Config.Likelihood = GaussianSigmoidMean then x.clamp(Torch.constant 0.0, Torch.constant 1.0) else x

    /// Draws x ~ p(x|z) as the paper's code draws wake-sleep's fantasies (anglepy's MLBN.gen_xz): Bernoulli
    /// probabilities held in [1e-3, 1 - 1e-3], Gaussian draws as they fall (not clipped, unlike sampleData). The
    /// generator's draws are sampleData's.
    let sampleDataUnclipped (m: VaeModel) (z: Tensor) (g: torch.Generator) : Tensor =
        match m.Decoder with
        | BernoulliDecoder p ->
            let probabilities = (BernoulliMlp.logits p z).sigmoid().mul(Torch.constant (1.0 - 2e-3)).add(Torch.constant 1e-3, Torch.one)
            torch.bernoulli(probabilities, generator = g)
        | GaussianDecoder _ | LinearGaussianDecoder _ -> drawGaussian m z g

    /// The exact log p(x) per datapoint of data x [N; D] for a linear-Gaussian decoder (float64, no
    /// gradient); other decoders have no closed form and raise InvalidOperationException.
    let exactLogLikelihood (m: VaeModel) (x: Tensor) : Tensor =
        match m.Decoder with
        | LinearGaussianDecoder p -> LinearGaussian.logMarginal p x
        | _ -> invalidOp "the exact log-likelihood is known only for the linear-Gaussian decoder"

    /// log p(x, z) = log p(x|z) + log p(z) for latent points z with leading sample dimensions.
    let logJoint (m: VaeModel) (x: Tensor) (z: Tensor) : Tensor =
        (logLikelihood m z x).add(Distributions.standardNormalLogDensity z, Torch.one)

    /// log p(theta) of the N(0, I) prior over the weights (not biases) of the given parameters (constants dropped).
    let logPriorOf (ps: NamedParameter list) : Tensor =
        ps |> List.filter (fun p -> p.IsWeight) |> List.map (fun p -> (p.Tensor * p.Tensor).sum().mul(Torch.constant -0.5)) |> List.reduce (fun a b -> a.add(b, Torch.one))

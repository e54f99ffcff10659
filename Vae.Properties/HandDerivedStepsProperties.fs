/// The hand-derived AEVB step (HandDerivedSteps) against autograd, in float64.
module Vae.Properties.HandDerivedStepsProperties

open Vae
open Expecto
open FsCheck
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// A float64 model with parameters spread wide enough that every term of the gradient matters.
let private modelOf (likelihood: Likelihood) (seed: int) (d: int) (h: int) (j: int) =
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = likelihood; DType = f64; InitStd = 0.5; HiddenLayers = 1 } (Torch.generator (int64 seed))

/// A float64 Bernoulli-decoder model (the MNIST decoder).
let private model = modelOf Bernoulli

/// The decoders the fused steps compute: Bernoulli (MNIST), Gaussian, and the sigmoid-mean Gaussian (Frey Face).
let private mlpDecoders = [| Bernoulli; Gaussian; GaussianSigmoidMean |]
let private decoderOf (k: int) = mlpDecoders.[abs k % mlpDecoders.Length]

let private maxAbs (a: Tensor) (b: Tensor) = (a - b).abs().max().item<double> ()

/// 150 steps (past Adagrad's warm-up) of an autograd step and of its fused counterpart from the same model and seed, in
/// float64: the minibatch bounds, the parameters, Adagrad's state and the generators' states agree to rounding.
let private followsTrajectoryIn (order: MinibatchOrder) (variant: WakeSleepVariant) (decoder: Likelihood) reference fused =
    use _ = torch.NewDisposeScope()
    let data = torch.rand([| 300L; 20L |], dtype = f64, generator = Torch.generator 5L)
    let c = { LearnerConfig.paper 0.05 with BatchSize = 10; WakeSleep = variant; Order = order }
    let init () = Aevb.init (modelOf decoder 3 20 8 3 |> WakeSleepVariant.initialise variant)
    let mutable expected = init ()
    let gr = Torch.generator 9L
    let mutable actual = HandDerivedSteps.prepare (init ())
    use b = HandDerivedSteps.workspace c actual.Model.Config
    let gf = Torch.generator 9L
    for _ in 1 .. 150 do
        let r, br = reference c data gr expected
        let f, bf = fused c data gf b actual
        expected <- r
        actual <- f
        Expect.floatClose Accuracy.high bf br "the minibatch bounds agree"
    let worst = Array.map2 maxAbs (VaeModel.tensors actual.Model) (VaeModel.tensors expected.Model) |> Array.max
    Expect.isLessThan worst 1e-9 "parameters after 150 steps"
    Expect.equal actual.Optimizer.Steps expected.Optimizer.Steps "Adagrad's step count"
    let sums = Array.map2 maxAbs (HandDerivedSteps.sumSquaresByParameter actual) expected.Optimizer.SumSquares |> Array.max
    Expect.isLessThan sums 1e-9 "Adagrad's accumulators"
    // The generators made the same draws: they are in the same state.
    Expect.equal (gf.get_state().data<byte>().ToArray()) (gr.get_state().data<byte>().ToArray()) "the generators' states"

let private followsTrajectoryWith = followsTrajectoryIn WithReplacement
let private followsTrajectory = followsTrajectoryWith SharedEncoder

[<Tests>]
let tests =
    testList "fused AEVB step" [
        testPropertyWithConfig (config 40) "the hand-derived gradient of estimator B with the weight prior equals autograd's, for every MLP decoder" <| fun (seed: int) (dn: PositiveInt) (hn: PositiveInt) (jn: PositiveInt) (mn: PositiveInt) (prior: bool) (grey: bool) (decoder: int) ->
            use _ = torch.NewDisposeScope()
            let d, h, j, m = size dn 1 12, size hn 1 9, size jn 1 5, size mn 1 7
            let c = { LearnerConfig.paper 0.02 with BatchSize = m; WeightPrior = prior }
            let g = Torch.generator (int64 seed + 11L)
            let x = torch.rand([| int64 m; int64 d |], dtype = f64, generator = g)
            let x = if grey then x else torch.bernoulli(x, generator = g)
            let eps = torch.randn([| 1L; int64 m; int64 j |], dtype = f64, generator = g)
            let n = 1000L
            let state = Aevb.init (modelOf (decoderOf decoder) seed d h j)
            let objective, perDatapoint = Aevb.objective c n state.Model x eps
            let expected = torch.autograd.grad([| objective |], VaeModel.tensors state.Model) |> Seq.toArray
            use b = HandDerivedSteps.workspace c state.Model.Config
            let bound = HandDerivedSteps.gradient c n b state.Model x (eps.squeeze(0L))
            let worst = Array.map2 maxAbs (VaeModel.tensors b.GradientModel) expected |> Array.max
            let scale = expected |> Array.map (fun t -> t.abs().max().item<double> ()) |> Array.max
            worst <= 1e-10 * max 1.0 scale && abs (bound.item<double> () - perDatapoint.mean().item<double> ()) < 1e-10

        testTheory "fused training follows Aevb.step's trajectory: same draws, same Adagrad, equal parameters to rounding" (List.ofArray mlpDecoders) <| fun decoder ->
            followsTrajectory decoder Aevb.step HandDerivedSteps.step

        testCase "a non-finite bound stops the fused step before any update" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 50L; 6L |], dtype = f64, generator = Torch.generator 1L)
            let c = { LearnerConfig.paper 0.02 with BatchSize = 5; Optimizer = AdagradOptimizer { Adagrad.paper 0.02 with WarmUp = 0 } }
            let s = HandDerivedSteps.prepare (Aevb.init (model 1 6 4 2))
            use b = HandDerivedSteps.workspace c s.Model.Config
            Torch.noGrad (fun () -> (VaeModel.tensors s.Model).[0].[0L, 0L] <- torch.tensor(nan, dtype = f64))
            let before = s.Model.ParameterVector.clone()
            Expect.throwsT<NonFiniteBoundException> (fun () -> HandDerivedSteps.step c data (Torch.generator 2L) b s |> ignore) "a NaN weight"
            Expect.equal (maxAbs (before.nan_to_num()) (s.Model.ParameterVector.nan_to_num())) 0.0 "the parameters are unchanged"
    ]

/// The wake-sleep objectives as WakeSleep.step writes them, differentiated by autograd: the wake phase's with respect to
/// the decoder at z = mu + sigma eps (held fixed), the sleep phase's with respect to the encoder at the fantasies.
let private wakeSleepByAutograd (c: LearnerConfig) (n: int64) (m: VaeModel) (x: Tensor) (eps: Tensor) (zp: Tensor) (xp: Tensor) =
    let tensors (ps: NamedParameter list) = ps |> List.map (fun p -> p.Tensor) |> List.toArray
    let q = VaeModel.encode m x
    let z = (Distributions.reparameterise q eps).detach()
    let logPxz = VaeModel.logLikelihood m z x + Distributions.standardNormalLogDensity z
    let wake = Learner.withWeightPrior c n (VaeModel.decoderParameters m) (logPxz.sum())
    let wakeGrads = torch.autograd.grad([| wake |], tensors (VaeModel.decoderParameters m)) |> Seq.toArray
    let sleepObjective = (Distributions.gaussianLogDensity (VaeModel.encode m xp) zp).sum()
    let sleep = Learner.withWeightPrior c n (VaeModel.encoderParameters m) sleepObjective
    let sleepGrads = torch.autograd.grad([| sleep |], tensors (VaeModel.encoderParameters m)) |> Seq.toArray
    Array.append sleepGrads wakeGrads, (logPxz - Distributions.gaussianLogDensityOfNoise q eps).mean(), sleepObjective

[<Tests>]
let wakeSleep =
    testList "fused wake-sleep step" [
        testPropertyWithConfig (config 40) "the hand-derived wake and sleep gradients with the weight prior equal autograd's, for every MLP decoder" <| fun (seed: int) (dn: PositiveInt) (hn: PositiveInt) (jn: PositiveInt) (mn: PositiveInt) (prior: bool) (decoder: int) ->
            use _ = torch.NewDisposeScope()
            let d, h, j, m = size dn 1 12, size hn 1 9, size jn 1 5, size mn 1 7
            let c = { LearnerConfig.paper 0.02 with BatchSize = m; WeightPrior = prior }
            let g = Torch.generator (int64 seed + 11L)
            let state = Aevb.init (modelOf (decoderOf decoder) seed d h j)
            let x = torch.rand([| int64 m; int64 d |], dtype = f64, generator = g)
            let eps = torch.randn([| int64 m; int64 j |], dtype = f64, generator = g)
            let zp = torch.randn([| int64 m; int64 j |], dtype = f64, generator = g)
            let xp = Torch.noGrad (fun () -> VaeModel.sampleData state.Model zp g)
            let expected, bound, sleep = wakeSleepByAutograd c 1000L state.Model x eps zp xp
            use b = HandDerivedSteps.workspace c state.Model.Config
            let fusedBound, fusedSleep = HandDerivedSteps.wakeSleepGradient c 1000L b state.Model x eps zp xp
            let worst = Array.map2 maxAbs (VaeModel.tensors b.GradientModel) expected |> Array.max
            let scale = expected |> Array.map (fun t -> t.abs().max().item<double> ()) |> Array.max
            worst <= 1e-10 * max 1.0 scale
            && abs (fusedBound.item<double> () - bound.item<double> ()) < 1e-10 * max 1.0 (abs (bound.item<double> ()))
            && abs (fusedSleep.item<double> () - sleep.item<double> ()) < 1e-10 * max 1.0 (abs (sleep.item<double> ()))

        testTheory "fused wake-sleep follows WakeSleep.step's trajectory: same draws, same Adagrad, equal parameters to rounding" (List.ofArray mlpDecoders) <| fun decoder ->
            followsTrajectory decoder WakeSleep.step HandDerivedSteps.wakeSleepStep

        testTheory "fused wake-sleep with anglepy's recognition model and fantasies follows WakeSleep.step's trajectory" (List.ofArray mlpDecoders) <| fun decoder ->
            followsTrajectoryWith Anglepy decoder WakeSleep.step HandDerivedSteps.wakeSleepStep

        testCase "with in-order minibatches (Burda et al.'s code) fused AEVB and wake-sleep follow their autograd steps" <| fun () ->
            followsTrajectoryIn InOrder SharedEncoder Bernoulli Aevb.step HandDerivedSteps.step
            followsTrajectoryIn InOrder SharedEncoder Bernoulli WakeSleep.step HandDerivedSteps.wakeSleepStep

        testTheory "a NaN in the decoder or the encoder stops the fused wake-sleep step before any update" [ "decoder"; "encoder" ] <| fun network ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 50L; 6L |], dtype = f64, generator = Torch.generator 1L)
            let c = { LearnerConfig.paper 0.02 with BatchSize = 5; Optimizer = AdagradOptimizer { Adagrad.paper 0.02 with WarmUp = 0 } }
            let s = HandDerivedSteps.prepare (Aevb.init (model 1 6 4 2))
            use b = HandDerivedSteps.workspace c s.Model.Config
            let parameters = if network = "decoder" then VaeModel.decoderParameters s.Model else VaeModel.encoderParameters s.Model
            Torch.noGrad (fun () -> parameters.[0].Tensor.[0L, 0L].fill_(Torch.scalar nan) |> ignore)
            let before = s.Model.ParameterVector.clone()
            Expect.throwsT<NonFiniteBoundException> (fun () -> HandDerivedSteps.wakeSleepStep c data (Torch.generator 2L) b s |> ignore) network
            Expect.equal (maxAbs (before.nan_to_num()) (s.Model.ParameterVector.nan_to_num())) 0.0 "the parameters are unchanged"
    ]

[<Tests>]
let preparation =
    testCase "preparing a state that is already flat keeps its values and its step count" <| fun () ->
        use _ = torch.NewDisposeScope()
        let data = torch.rand([| 100L; 6L |], dtype = f64, generator = Torch.generator 1L)
        let c = { LearnerConfig.paper 0.02 with BatchSize = 5; Optimizer = AdagradOptimizer { Adagrad.paper 0.02 with WarmUp = 2 } }
        let fresh = Aevb.init (model 1 6 4 2)
        let s = HandDerivedSteps.prepare fresh
        Expect.isTrue (obj.ReferenceEquals(s.Model, fresh.Model)) "prepare keeps the model"
        Expect.equal s.Optimizer.SumSquares.Length 1 "one accumulator vector"
        use b = HandDerivedSteps.workspace c s.Model.Config
        let g = Torch.generator 2L
        let mutable t = s
        for _ in 1 .. 5 do t <- fst (HandDerivedSteps.step c data g b t)
        let again = HandDerivedSteps.prepare t
        Expect.equal again.Optimizer.Steps 5L "the step count"
        Expect.isTrue (obj.ReferenceEquals(again.Model, t.Model)) "the same model"
        Expect.isTrue (obj.ReferenceEquals(again.Optimizer.SumSquares.[0], t.Optimizer.SumSquares.[0])) "the same accumulator vector, nothing copied"

[<Tests>]
let mixedPrecision =
    testPropertyWithConfig (config 15) "the bfloat16 mixed-precision gradient is within 3 % of the float32 gradient" <| fun (seed: int) (mn: PositiveInt) ->
        use _ = torch.NewDisposeScope()
        let d, h, j, m = 30, 16, 3, 5 + mn.Get % 20
        let g = Torch.generator (int64 seed)
        let model =
            VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.3; HiddenLayers = 1 } g
        let x = torch.rand([| int64 m; int64 d |], generator = g)
        let eps = torch.randn([| int64 m; int64 j |], generator = g)
        let c = { LearnerConfig.paper 0.02 with BatchSize = m }
        use full = HandDerivedSteps.workspace c model.Config
        let boundFull = (HandDerivedSteps.gradient c 1000L full model x eps).item<float32> ()
        let mixedConfig = { c with MixedPrecision = true }
        use mixed = HandDerivedSteps.workspace mixedConfig model.Config
        let boundMixed = (HandDerivedSteps.gradient mixedConfig 1000L mixed model x eps).item<float32> ()
        let relative = (mixed.Gradient - full.Gradient).norm().item<float32> () / full.Gradient.norm().item<float32> ()
        relative < 0.03f && abs (boundMixed - boundFull) < 0.01f * abs boundFull


[<Tests>]
let onePassFloat32 =
    testList "one-pass float32 step" [
        // The float32 kernels (tails and 16-lane vectors) against autograd of the same model in float64: the only
        // differences are float32 rounding and tanh's few units, so the gradient agrees to about 1e-5 of its scale.
        testPropertyWithConfig (config 30) "the one-pass float32 gradient equals autograd's in float64 to float32 accuracy" <| fun (seed: int) (dn: PositiveInt) (hn: PositiveInt) (jn: PositiveInt) (mn: PositiveInt) (prior: bool) (grey: bool) ->
            use _ = torch.NewDisposeScope()
            let d, h, j, m = size dn 1 40, size hn 1 40, size jn 1 5, size mn 1 12
            let c = { LearnerConfig.paper 0.02 with BatchSize = m; WeightPrior = prior; Gradient = OnePass }
            let g = Torch.generator (int64 seed + 17L)
            let config = { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.5; HiddenLayers = 1 }
            let model = VaeModel.create config g
            let x = torch.rand([| int64 m; int64 d |], generator = g)
            let x = if grey then x else torch.bernoulli(x, generator = g)
            let eps = torch.randn([| int64 m; int64 j |], generator = g)
            let n = 1000L
            use w = HandDerivedSteps.workspace c config
            let bound = (HandDerivedSteps.gradient c n w model x eps).item<float32> () |> float
            let wide = Aevb.init (VaeModel.ofVector { config with DType = f64 } (model.ParameterVector.to_type(f64)))
            let objective, perDatapoint = Aevb.objective c n wide.Model (x.to_type(f64)) (eps.to_type(f64).unsqueeze(0L))
            let expected = torch.autograd.grad([| objective |], VaeModel.tensors wide.Model) |> Seq.toArray
            let scale = expected |> Array.map (fun t -> t.abs().max().item<double> ()) |> Array.fold max 1.0
            let worst = Array.map2 (fun (a: Tensor) b -> maxAbs (a.to_type(f64)) b) (VaeModel.tensors w.GradientModel) expected |> Array.max
            let meanBound = perDatapoint.mean().item<double> ()
            worst <= 2e-5 * scale && abs (bound - meanBound) <= 1e-5 * max 1.0 (abs meanBound)

        // The shipped shape: the paper's MNIST model (784-500-20), M = 100, float32, every step `vae train` can take,
        // against autograd of the same parameters and draws in float64. Per parameter tensor, the relative error of the
        // gradient (norm of the difference over the norm) is float32 rounding for the float32 steps and bfloat16's
        // 8 bits for the mixed-precision one.
        testCase "at the shipped 784-500-20 shape, M = 100, every float32 step's gradient matches float64 autograd" <| fun () ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator 23L
            let config = { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.05; HiddenLayers = 1 }
            let model = VaeModel.create config g
            let x = torch.bernoulli(torch.rand([| 100L; 784L |], generator = g) * 0.3, generator = g)
            let eps = torch.randn([| 100L; 20L |], generator = g)
            let paper = { LearnerConfig.paper 0.02 with BatchSize = 100 }
            let wide = Aevb.init (VaeModel.ofVector { config with DType = f64 } (model.ParameterVector.to_type(f64)))
            let objective, perDatapoint = Aevb.objective paper 60000L wide.Model (x.to_type(f64)) (eps.to_type(f64).unsqueeze(0L))
            let expected = torch.autograd.grad([| objective |], VaeModel.tensors wide.Model) |> Seq.toArray
            let meanBound = perDatapoint.mean().item<double> ()
            for name, c, tolerance in [ "hand-derived", paper, 1e-5; "one-pass", { paper with Gradient = OnePass }, 1e-5; "bfloat16", { paper with MixedPrecision = true }, 0.02 ] do
                use w = HandDerivedSteps.workspace c config
                let bound = (HandDerivedSteps.gradient c 60000L w model x eps).item<float32> () |> float
                let worst =
                    Array.map2 (fun (a: Tensor) (b: Tensor) -> (a.to_type(f64) - b).norm().item<double> () / max 1e-12 (b.norm().item<double> ()))
                        (VaeModel.tensors w.GradientModel) expected
                    |> Array.max
                Expect.isLessThan worst tolerance (sprintf "%s: the largest relative error of a parameter's gradient" name)
                Expect.isLessThan (abs (bound - meanBound)) (tolerance * abs meanBound) (sprintf "%s: the minibatch's mean bound" name)

        testCase "one-pass training draws as Aevb.step does and stays near its trajectory for 150 steps" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 300L; 40L |], generator = Torch.generator 5L)
            let config = { InputDim = 40; HiddenUnits = 24; LatentDim = 3; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 }
            let c = { LearnerConfig.paper 0.05 with BatchSize = 10 }
            let onePassConfig = { c with Gradient = OnePass }
            let mutable expected = Aevb.init (VaeModel.create config (Torch.generator 3L))
            let mutable actual = HandDerivedSteps.prepare (Aevb.init (VaeModel.create config (Torch.generator 3L)))
            use w = HandDerivedSteps.workspace onePassConfig config
            let gr, gf = Torch.generator 9L, Torch.generator 9L
            for _ in 1 .. 150 do
                let r, br = Aevb.step c data gr expected
                let f, bf = HandDerivedSteps.step onePassConfig data gf w actual
                expected <- r
                actual <- f
                Expect.floatClose { absolute = 1e-3; relative = 1e-4 } bf br "the minibatch bounds agree to float32 rounding"
            let worst = (actual.Model.ParameterVector - VaeModel.vectorOf config (VaeModel.tensors expected.Model)).abs().max().item<float32> ()
            Expect.isLessThan worst 1e-3f "parameters after 150 steps (Adagrad steps of 0.05 at most)"
            Expect.equal (gf.get_state().data<byte>().ToArray()) (gr.get_state().data<byte>().ToArray()) "the generators made the same draws"
    ]

/// Helpers for the mixed-precision kernels' properties: inputs in bfloat16 and float32, the expected values in float64.
module private Low =
    let bf16 = torch.bfloat16
    /// A bfloat16 product [r; c], values spread over several decades around scale s.
    let product (g: torch.Generator) (r: int) (c: int) (s: float) =
        (torch.randn([| int64 r; int64 c |], generator = g) * torch.exp(torch.randn([| int64 r; int64 c |], generator = g)) * s).to_type(bf16)
    let wide (t: Tensor) = t.to_type(f64)
    /// The largest elementwise |a - b| in float32 units of b (2^-23 |b|, at least the smallest normal's).
    let ulps (a: Tensor) (b: Tensor) = ((wide a - b).abs() / (b.abs() * 1.1920929e-7).clamp_min(Torch.scalar 1e-38)).max().item<double> ()
    /// The largest elementwise |a - b| / max(1, |b|).
    let relative (a: Tensor) (b: Tensor) = ((wide a - b).abs() / b.abs().clamp_min(Torch.scalar 1.0)).max().item<double> ()
    /// A bfloat16 tensor holds b rounded to bfloat16 when it is within half a bfloat16 unit of b (2^-8 |b| at most: 8
    /// significant bits) plus the float32 arithmetic's own error before the rounding: a few float32 units (2^-23) of
    /// terms, the elementwise magnitude of the terms that cancel in b.
    let rounds (low: Tensor) (b: Tensor) (terms: Tensor) =
        (wide low - b).abs().le(b.abs() * (1.0 / 256.0) + terms * 5e-7 + 1e-38).all().item<bool> ()

[<Tests>]
let kernels =
    testList "mixed-precision kernels" [
        testPropertyWithConfig (config 30) "tanhLayer computes tanh(product + bias) within 8 float32 units and rounds it to bfloat16 as libtorch does" <| fun (seed: int) (rn: PositiveInt) (cn: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let r, c = size rn 1 5, size cn 1 70
            let p, bias = Low.product g r c 3.0, torch.randn([| int64 c |], generator = g)
            let h, hLow = torch.empty([| int64 r; int64 c |]), torch.empty([| int64 r; int64 c |], dtype = Low.bf16)
            Kernels.tanhLayer p bias h hLow
            // tanh of the float32 sum, as the step computes it.
            let expected = (p.to_type(torch.float32) + bias).to_type(f64).tanh()
            Low.ulps h expected <= 8.0 && hLow.eq(h.to_type(Low.bf16)).all().item<bool> ()

        testCase "the kernels round to bfloat16 exactly as libtorch does: ties to even, infinities, NaN, subnormals, signed zeros" <| fun () ->
            use _ = torch.NewDisposeScope()
            // latentForward with zero log-variances and means writes z = eps rounded: eps carries the cases.
            let bits = [| 0x3F808000u; 0x3F818000u; 0x3F80C000u; 0x3F807FFFu; 0xBF808000u; 0x7F7FFFFFu; 0x7F800000u; 0xFF800000u
                          0x7FC00000u; 0xFFC00001u; 0x00000001u; 0x80008000u; 0x00018000u; 0x80000000u; 0x00000000u; 0x477FE000u
                          0x3F7FFFFFu; 0x4B000001u |]
            let eps = torch.tensor(bits |> Array.map System.BitConverter.UInt32BitsToSingle).view(-1L, 1L)
            let n = eps.shape.[0]
            let zLow = torch.empty([| n; 1L |], dtype = Low.bf16)
            Kernels.latentForward (torch.zeros([| n; 2L |], dtype = Low.bf16)) (torch.zeros([| 2L |])) eps (torch.empty([| n; 2L |])) zLow |> ignore
            let expected = eps.to_type(Low.bf16)
            let same = (zLow.eq(expected)).logical_or(zLow.isnan().logical_and(expected.isnan())).all().item<bool> ()
            Expect.isTrue same (sprintf "bfloat16 rounding: %O against libtorch's %O" (zLow.to_type(torch.float32).data<float32>().ToArray()) (expected.to_type(torch.float32).data<float32>().ToArray()))

        testPropertyWithConfig (config 30) "bernoulliOutput returns sum softplus(l) - x l, writes x - sigmoid(l) rounded and its column sums, for logits up to +-100" <| fun (seed: int) (rn: PositiveInt) (cn: PositiveInt) (binary: bool) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let r, c = size rn 1 6, size cn 1 70
            let p = Low.product g r c 4.0
            // Some logits far out: +-100 in the product.
            p.view(-1L).[0L] <- torch.tensor(100.0f).to_type(Low.bf16)
            if p.numel() > 1L then p.view(-1L).[1L] <- torch.tensor(-100.0f).to_type(Low.bf16)
            let bias = torch.randn([| int64 c |], generator = g)
            let x = torch.rand([| int64 r; int64 c |], generator = g)
            let x = if binary then x.round() else x
            let delta, biasGradient = torch.empty([| int64 r; int64 c |], dtype = Low.bf16), torch.empty([| int64 c |])
            let nll = Kernels.bernoulliOutput p bias x delta biasGradient
            let l = (p.to_type(torch.float32) + bias).to_type(f64)
            let softplus = l.clamp_min(Torch.scalar 0.0) + (-l.abs()).exp().log1p()
            let expectedNll = (softplus - Low.wide x * l).sum().item<double> ()
            let expectedDelta = Low.wide x - l.sigmoid()
            abs (nll - expectedNll) <= 1e-5 * max 1.0 (abs expectedNll)
            && Low.rounds delta expectedDelta (Low.wide x + l.sigmoid())
            && Low.relative biasGradient (expectedDelta.sum(0L)) <= 1e-5

        testPropertyWithConfig (config 30) "tanhBackward writes dh (1 - h^2) rounded and its column sums" <| fun (seed: int) (rn: PositiveInt) (cn: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let r, c = size rn 1 6, size cn 1 70
            let dh = Low.product g r c 1.0
            let h = torch.rand([| int64 r; int64 c |], generator = g) * 2.0 - 1.0
            let da, biasGradient = torch.empty([| int64 r; int64 c |], dtype = Low.bf16), torch.empty([| int64 c |])
            Kernels.tanhBackward dh h da biasGradient
            let expected = Low.wide dh * (1.0 - Low.wide h * Low.wide h)
            Low.rounds da expected (Low.wide (dh.abs())) && Low.relative biasGradient (expected.sum(0L)) <= 1e-5

        testPropertyWithConfig (config 30) "latentForward gives z = mu + sigma eps and Appendix B's KL; latentBackward the heads' gradient, KL included" <| fun (seed: int) (rn: PositiveInt) (jn: PositiveInt) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let r, j = size rn 1 6, size jn 1 25
            let p, bias = Low.product g r (2 * j) 0.5, torch.randn([| 2L * int64 j |], generator = g) * 0.5
            let eps = torch.randn([| int64 r; int64 j |], generator = g)
            let latent, zLow = torch.empty([| int64 r; 2L * int64 j |]), torch.empty([| int64 r; int64 j |], dtype = Low.bf16)
            let kl = Kernels.latentForward p bias eps latent zLow
            let heads = (p.to_type(torch.float32) + bias).to_type(f64)
            let mu, logVar = heads.narrow(1L, 0L, int64 j), heads.narrow(1L, int64 j, int64 j)
            let sd = (logVar * 0.5).exp()
            let expectedKl = ((mu.square() + sd.square() - logVar - 1.0).sum() * 0.5).item<double> ()
            let dz = Low.product g r j 1.0
            let dHeads, biasGradient = torch.empty([| int64 r; 2L * int64 j |], dtype = Low.bf16), torch.empty([| 2L * int64 j |])
            Kernels.latentBackward dz latent eps dHeads biasGradient
            let dzw = Low.wide dz
            let expectedHeads = torch.cat([| dzw - mu; (dzw * Low.wide eps * sd - sd.square() + 1.0) * 0.5 |], 1L)
            abs (kl - expectedKl) <= 1e-5 * max 1.0 (abs expectedKl)
            && Low.rounds zLow (mu + sd * Low.wide eps) (mu.abs() + (sd * Low.wide eps).abs())
            && Low.rounds dHeads expectedHeads (torch.cat([| dzw.abs() + mu.abs(); (dzw * Low.wide eps * sd).abs() + sd.square() + 1.0 |], 1L))
            && Low.relative biasGradient (expectedHeads.sum(0L)) <= 1e-5

        testCase "a kernel refuses a tensor of the wrong dtype or size, naming it" <| fun () ->
            use _ = torch.NewDisposeScope()
            let p = torch.zeros([| 2L; 3L |], dtype = Low.bf16)
            let wrongDtype = Expect.throwsC (fun () -> Kernels.tanhLayer p (torch.zeros([| 3L |], dtype = f64)) (torch.empty([| 2L; 3L |])) (torch.empty([| 2L; 3L |], dtype = Low.bf16))) id
            Expect.stringContains wrongDtype.Message "bias is Float64" "the tensor and its dtype"
            let wrongSize = Expect.throwsC (fun () -> Kernels.tanhLayer p (torch.zeros([| 4L |])) (torch.empty([| 2L; 3L |])) (torch.empty([| 2L; 3L |], dtype = Low.bf16))) id
            Expect.stringContains wrongSize.Message "bias has 4 elements; expected 1 x 3" "the tensor and the size expected"

        testCase "tanhLayer keeps NaN, so a NaN weight still shows in the mixed-precision bound" <| fun () ->
            use _ = torch.NewDisposeScope()
            let p = torch.tensor([| nanf; 1.0f; infinityf; -infinityf |]).view(1L, 4L).to_type(Low.bf16)
            let h, hLow = torch.empty([| 1L; 4L |]), torch.empty([| 1L; 4L |], dtype = Low.bf16)
            Kernels.tanhLayer p (torch.zeros([| 4L |])) h hLow
            let v = h.data<float32>().ToArray()
            Expect.isTrue (System.Single.IsNaN v.[0]) "tanh NaN = NaN"
            Expect.equal v.[2 ..] [| 1.0f; -1.0f |] "tanh of infinities"
            let data = torch.rand([| 50L; 20L |], generator = Torch.generator 1L)
            let c = { LearnerConfig.paper 0.02 with BatchSize = 5; MixedPrecision = true; Optimizer = AdagradOptimizer { Adagrad.paper 0.02 with WarmUp = 0 } }
            let model = VaeModel.create { InputDim = 20; HiddenUnits = 17; LatentDim = 3; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.1; HiddenLayers = 1 } (Torch.generator 1L)
            let s = HandDerivedSteps.prepare (Aevb.init model)
            use b = HandDerivedSteps.workspace c s.Model.Config
            Torch.noGrad (fun () -> (VaeModel.tensors s.Model).[0].[0L, 0L] <- torch.tensor(nanf))
            let before = s.Model.ParameterVector.clone()
            Expect.throwsT<NonFiniteBoundException> (fun () -> HandDerivedSteps.step c data (Torch.generator 2L) b s |> ignore) "a NaN weight"
            Expect.isTrue (before.nan_to_num().eq(s.Model.ParameterVector.nan_to_num()).all().item<bool> ()) "the parameters are unchanged"
    ]

[<Tests>]
let parallelKernels =
    // Kernels.forRows splits rows in blocks of 64 over libtorch's threads; a row's result depends on that row alone, so
    // two threads must give the one-thread result bit for bit (the suite otherwise runs on one thread).
    testPropertyWithConfig (config 10) "the row-parallel kernels give their one-thread results bit for bit on two threads" <| fun (seed: int) (rn: PositiveInt) ->
        use _ = torch.NewDisposeScope()
        let g = Torch.generator (int64 seed)
        let m, j, h = 7, 5, 90
        let rows = m * (10 + rn.Get % 300) // 70 to 2163 rows: several blocks of 64
        let z, wT, bias = torch.randn([| int64 rows; int64 j |], generator = g), torch.randn([| int64 j; int64 h |], generator = g), torch.randn([| int64 h |], generator = g)
        let y, product = torch.randn([| int64 m; int64 h |], generator = g), torch.randn([| int64 rows; int64 h |], generator = g) * 4.0
        let run threads =
            Torch.setThreads threads
            let hidden, dots, sums = torch.empty([| int64 rows; int64 h |]), torch.empty([| int64 rows; 1L |]), torch.empty([| int64 rows; 1L |])
            Kernels.tanhLayerDots z wT bias y hidden dots
            Kernels.softplusRowSums product bias sums
            hidden, dots, sums
        let before = torch.get_num_threads ()
        try
            let h1, d1, s1 = run 1
            let h2, d2, s2 = run 2
            let same (a: torch.Tensor) (b: torch.Tensor) = a.eq(b).all().item<bool> ()
            same h1 h2 && same d1 d2 && same s1 s2
        finally Torch.setThreads before

[<Tests>]
let workspaceChecks =
    testList "fused workspace" [
        testCase "prepare gathers Adagrad's accumulators into one vector laid out as the parameters" <| fun () ->
            use _ = torch.NewDisposeScope()
            let s = Aevb.init (model 1 6 4 2)
            Torch.noGrad (fun () -> s.Optimizer.SumSquares |> Array.iteri (fun i t -> t.fill_(Torch.scalar (float (i + 1))) |> ignore))
            let prepared = HandDerivedSteps.prepare s
            Expect.equal prepared.Optimizer.SumSquares.Length 1 "one vector"
            let worst = Array.map2 maxAbs (HandDerivedSteps.sumSquaresByParameter prepared) s.Optimizer.SumSquares |> Array.max
            Expect.equal worst 0.0 "each parameter's accumulator at its place"

        testCase "a step with a workspace made for another configuration, or of an unprepared state, is refused" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.rand([| 50L; 6L |], dtype = f64, generator = Torch.generator 1L)
            let c = { LearnerConfig.paper 0.02 with BatchSize = 5 }
            let s = HandDerivedSteps.prepare (Aevb.init (model 1 6 4 2))
            use other = HandDerivedSteps.workspace c (model 1 6 5 2).Config
            Expect.throwsT<System.ArgumentException> (fun () -> HandDerivedSteps.step c data (Torch.generator 2L) other s |> ignore) "another configuration"
            use w = HandDerivedSteps.workspace c s.Model.Config
            Expect.throwsT<System.ArgumentException> (fun () -> HandDerivedSteps.step c data (Torch.generator 2L) w (Aevb.init (model 1 6 4 2)) |> ignore) "an unprepared state"
    ]

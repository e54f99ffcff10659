/// The hand-derived step of estimator A and the importance-weighted bound (LogWeightSteps) against autograd, in float64.
module Vae.Properties.LogWeightStepsProperties

open Vae
open Expecto
open FsCheck
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// A float64 Bernoulli-decoder model with parameters spread wide enough that every term of the gradient matters.
let private modelOf (seed: int) (layers: int) (d: int) (h: int) (j: int) =
    VaeModel.create { InputDim = d; HiddenUnits = h; LatentDim = j; Likelihood = Bernoulli; DType = f64; InitStd = 0.5; HiddenLayers = layers } (Torch.generator (int64 seed))

let private maxAbs (a: Tensor) (b: Tensor) = (a - b).abs().max().item<double> ()

/// The objectives the step covers: estimator A, the importance-weighted bound, and that bound with the doubly
/// reparameterised encoder gradient.
let private objectives = [| A, Reparameterised; Iwae, Reparameterised; Iwae, DoublyReparameterised |]

[<Tests>]
let tests =
    testList "hand-derived log-weight step" [
        testPropertyWithConfig (config 40) "the hand-derived gradient of estimator A and of the importance-weighted bound (plain or doubly reparameterised) equals autograd's, for 1-3 tanh layers" <| fun (seed: int) (dn: PositiveInt) (hn: PositiveInt) (jn: PositiveInt) (mn: PositiveInt) (ln: PositiveInt) (layersN: PositiveInt) (prior: bool) (which: int) ->
            use _ = torch.NewDisposeScope()
            let d, h, j, m, l, layers = size dn 1 12, size hn 1 9, size jn 1 5, size mn 1 7, size ln 1 6, size layersN 1 3
            let estimator, encoderGradient = objectives.[abs which % objectives.Length]
            let c = { LearnerConfig.paper 0.02 with BatchSize = m; Samples = l; WeightPrior = prior; Estimator = estimator; EncoderGradient = encoderGradient }
            let g = Torch.generator (int64 seed + 17L)
            let x = torch.bernoulli(torch.rand([| int64 m; int64 d |], dtype = f64, generator = g), generator = g)
            let eps = torch.randn([| int64 l; int64 m; int64 j |], dtype = f64, generator = g)
            let n = 1000L
            let state = Aevb.init (modelOf seed layers d h j)
            let objective, perDatapoint = Aevb.objective c n state.Model x eps
            let expected = Aevb.gradients c n state.Model x eps objective
            let layout = VaeModel.layout state.Model.Config
            let gradient = VaeModel.ofVector state.Model.Config (torch.zeros([| layout.Count |], dtype = f64))
            let actual = LogWeightSteps.gradient c n gradient layout.WeightCount state.Model x eps
            let worst = Array.map2 maxAbs (VaeModel.tensors gradient) expected |> Array.max
            let scale = expected |> Array.map (fun t -> t.abs().max().item<double> ()) |> Array.max
            worst <= 1e-10 * max 1.0 scale && maxAbs actual (perDatapoint.detach()) < 1e-10

        testTheory "training with it follows Aevb.step's trajectory under Adam and Burda's schedule (as the text: minibatches drawn, Kingma & Ba's update; as the code: in order, the code's update), its moments as vectors: same draws, equal parameters and moments to rounding"
                   [ for o in objectives do for convention in [ (WithReplacement, KingmaBa); (InOrder, BurdaCode) ] -> o, convention ] <| fun ((estimator, encoderGradient), (order, variant)) ->
            use _ = torch.NewDisposeScope()
            let data = torch.bernoulli(torch.rand([| 300L; 20L |], dtype = f64, generator = Torch.generator 5L))
            let c = { LearnerConfig.paper 0.05 with
                        BatchSize = 10; Samples = 3; Estimator = estimator; EncoderGradient = encoderGradient; Order = order
                        Optimizer = AdamOptimizer { Adam.burda 0.01 BurdaStages with Variant = variant } }
            let init () = Aevb.initFor c.Optimizer (modelOf 3 2 20 8 3)
            let mutable expected = init ()
            // The step's own state: the optimiser's moments gathered into vectors laid out as the parameter vector.
            let mutable actual = HandDerivedSteps.prepare (init ())
            let layout = VaeModel.layout actual.Model.Config
            let gradient = VaeModel.ofVector actual.Model.Config (torch.zeros([| layout.Count |], dtype = f64))
            let gr, gf = Torch.generator 9L, Torch.generator 9L
            // 150 steps of 10 of 300 datapoints: five passes, through the schedule's first two stages.
            for _ in 1 .. 150 do
                let r, br = Aevb.step c data gr expected
                let f, bf = LogWeightSteps.step c data gf gradient layout.WeightCount actual
                expected <- r
                actual <- f
                Expect.floatClose Accuracy.high bf br "the minibatch estimates agree"
            let worst (a: Tensor[]) (b: Tensor[]) = Array.map2 maxAbs a b |> Array.max
            Expect.isLessThan (worst (VaeModel.tensors actual.Model) (VaeModel.tensors expected.Model)) 1e-9 "parameters after 150 steps"
            Expect.equal actual.Optimizer.FirstMoments.Length 1 "one vector of first moments"
            Expect.isLessThan (worst (HandDerivedSteps.firstMomentsByParameter actual) expected.Optimizer.FirstMoments) 1e-9 "Adam's first moments"
            Expect.isLessThan (worst (HandDerivedSteps.sumSquaresByParameter actual) expected.Optimizer.SumSquares) 1e-9 "Adam's second moments"
            Expect.equal actual.Optimizer.Steps expected.Optimizer.Steps "the step count"
            Expect.equal (gf.get_state().data<byte>().ToArray()) (gr.get_state().data<byte>().ToArray()) "the generators' states"

        testCase "a run chooses it where it applies and reports it; the autograd choice keeps autograd" <| fun () ->
            use _ = torch.NewDisposeScope()
            let settings gradient =
                { Algorithm = AevbAlgorithm
                  Model = { InputDim = 12; HiddenUnits = 5; LatentDim = 2; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 2 }
                  Learner = { LearnerConfig.paper 0.05 with Estimator = Iwae; Samples = 5; BatchSize = 10; Gradient = gradient; Optimizer = AdamOptimizer(Adam.burda 0.001 BurdaStages) }
                  Seed = 4L; Dataset = "test" }
            Expect.equal (TrainingRun.gradientPath (TrainingRun.create (settings Auto))) "hand-derived" "auto chooses the hand-derived step"
            Expect.equal (TrainingRun.gradientPath (TrainingRun.create (settings HandDerived))) "hand-derived" "and it can be asked for"
            Expect.equal (TrainingRun.gradientPath (TrainingRun.create (settings Autograd))) "autograd" "autograd when asked"
            let gaussian = settings Auto
            let gaussian = { gaussian with Model = { gaussian.Model with Likelihood = Gaussian } }
            Expect.equal (TrainingRun.gradientPath (TrainingRun.create gaussian)) "autograd" "a Gaussian decoder trains by autograd"
    ]

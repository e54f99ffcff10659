/// Burda et al.'s code's initialisation as settings: Glorot and Bengio's uniform weights, and the decoder's output bias
/// at the logit of the training mean (datasets.get_train_bias_np), set before the first step.
module Vae.Properties.InitializationProperties

open Expecto
open TorchSharp
open Vae.Core
open Vae.Properties.Generators

/// logit(clip(column mean, 0.001, 0.999)) of a row-major [n; d] array, in float64 over plain arrays.
let private logitOfClippedMeans (rows: float32[][]) =
    let n = float rows.Length
    [| for j in 0 .. rows.[0].Length - 1 ->
        let p = rows |> Array.sumBy (fun r -> float r.[j]) |> fun s -> min 0.999 (max 0.001 (s / n))
        log (p / (1.0 - p)) |]

let private dataOf (rows: float32[][]) = torch.tensor(Array.concat rows).reshape([| int64 rows.Length; int64 rows.[0].Length |])

/// Grey levels with a column of zeros and a column of ones, so that both clips apply.
let private greyRows n d seed =
    let r = System.Random(seed)
    [| for _ in 1 .. n -> [| for j in 0 .. d - 1 -> if j = 0 then 0.0f elif j = 1 then 1.0f else float32 (r.NextDouble()) |] |]

[<Tests>]
let tests =
    testList "initialisation" [
        for likelihood in [ Bernoulli; Gaussian; LinearGaussian ] do
          testCase (sprintf "Glorot's uniform keeps each weight within +-sqrt(6 / (in + out)) with the uniform's variance and zeroes the rest (%A decoder)" likelihood) <| fun () ->
            use _ = torch.NewDisposeScope()
            let c = { InputDim = 300; HiddenUnits = 200; LatentDim = 10; Likelihood = likelihood; DType = torch.float32; InitStd = 0.01; HiddenLayers = 2 }
            let m = VaeModel.create c (Torch.generator 1L) |> VaeModel.glorotUniform (Torch.generator 2L)
            for p in VaeModel.parameters m do
                let values = p.Tensor.to_type(torch.float64).flatten().data<double>().ToArray()
                if p.IsWeight then
                    let a = sqrt (6.0 / float (p.Tensor.shape.[0] + p.Tensor.shape.[1]))
                    let n = float values.Length
                    let mean = Array.average values
                    let variance = values |> Array.averageBy (fun v -> (v - mean) * (v - mean))
                    Expect.isTrue (values |> Array.forall (fun v -> abs v <= a)) (sprintf "%s within +-%g" p.Name a)
                    Expect.isGreaterThan (Array.max values) (0.9 * a) (sprintf "%s reaches towards +%g" p.Name a)
                    Expect.isLessThan (Array.min values) (-0.9 * a) (sprintf "%s reaches towards -%g" p.Name a)
                    // The uniform's variance a^2 / 3, within five standard errors (a^2 sqrt((1/5 - 1/9) / n)) and its mean 0.
                    Expect.isLessThan (abs (variance - a * a / 3.0)) (5.0 * a * a * sqrt ((0.2 - 1.0 / 9.0) / n)) (sprintf "%s's variance" p.Name)
                    Expect.isLessThan (abs mean) (5.0 * a / sqrt (3.0 * n)) (sprintf "%s's mean" p.Name)
                else Expect.isTrue (values |> Array.forall ((=) 0.0)) (sprintf "%s is zero" p.Name)

        testCase "the output bias at the data's mean is the logit of each column's mean clipped to [0.001, 0.999]" <| fun () ->
            use _ = torch.NewDisposeScope()
            let rows = greyRows 50 6 3
            let c = { InputDim = 6; HiddenUnits = 4; LatentDim = 2; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.1; HiddenLayers = 1 }
            let m = VaeModel.create c (Torch.generator 1L) |> VaeModel.withOutputBiasAtDataMean (dataOf rows)
            let bias = match m.Decoder with BernoulliDecoder p -> p.Logits.Bias.to_type(torch.float64).data<double>().ToArray() | _ -> failwith "Bernoulli"
            let expected = logitOfClippedMeans rows
            Expect.floatClose { absolute = 1e-5; relative = 1e-6 } bias.[0] (log (0.001 / 0.999)) "an all-zero column clips at 0.001"
            Array.iteri2 (fun j b e -> Expect.floatClose { absolute = 1e-5; relative = 1e-6 } b e (sprintf "column %d" j)) bias expected

        // Estimator B trains by autograd here (two tanh layers, Adam); the importance-weighted bound by the hand-derived
        // log-weight step, which must see the bias too.
        for estimator, samples, path in [ B, 1, "autograd"; Iwae, 2, "hand-derived" ] do
          testCase (sprintf "a run with Burda et al.'s initialisation draws Glorot's weights, sets the output bias from its training data before the first step and keeps it on resume (%s)" path) <| fun () ->
            use _ = torch.NewDisposeScope()
            let rows = greyRows 40 8 4
            let data = dataOf rows
            let c = { InputDim = 8; HiddenUnits = 6; LatentDim = 2; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 2 }
            // Their code's Adam moves nothing at its first step: after it the parameters are the initial ones.
            let settings =
                { Algorithm = AevbAlgorithm; Model = c; Seed = 9L; Dataset = "init"
                  Learner = { LearnerConfig.paper 0.02 with BatchSize = 10; Binarize = true; Estimator = estimator; Samples = samples
                                                            Optimizer = AdamOptimizer { Adam.burda 0.001 BurdaStages with Variant = BurdaCode }
                                                            Initialization = GlorotUniform; OutputBias = TrainingMeanLogit } }
            let fit = fitTo
            let start = TrainingRun.create settings
            Expect.equal (TrainingRun.gradientPath start) path "the gradient path under test"
            let bias (r: TrainingRun) = match r.State.Model.Decoder with BernoulliDecoder p -> p.Logits.Bias.clone() | _ -> failwith "Bernoulli"
            Expect.isTrue (bias start |> fun b -> b.eq(Torch.constant 0.0).all().item<bool> ()) "Glorot's biases are 0 until the run sees its data"
            let g = Torch.generator 9L
            let expected = VaeModel.create c g |> VaeModel.glorotUniform g |> VaeModel.withOutputBiasAtDataMean data
            let once = fit data 1L start
            Expect.isTrue (sameBits once.State.Model.ParameterVector expected.ParameterVector) "after the first (motionless) step: Glorot's draws and the data's output bias"
            let onceBias = (bias once).data<float32>().ToArray()
            Array.iteri2 (fun j (b: float32) e -> Expect.floatClose { absolute = 1e-5; relative = 1e-6 } (float b) e (sprintf "column %d's bias" j))
                onceBias (logitOfClippedMeans rows)
            // A resumed run keeps its parameters: other data set nothing after the first step.
            let moved = fit data 5L once
            let resumed = TrainingRun.ofCheckpoint "init.vae" (Checkpoint.ofBytes "init.vae" (Checkpoint.toBytes (TrainingRun.toCheckpoint Map.empty moved)))
            Expect.equal (resumed.Settings.Learner.Initialization, resumed.Settings.Learner.OutputBias) (GlorotUniform, TrainingMeanLogit) "the checkpoint keeps both settings"
            let before = resumed.State.Model.ParameterVector.clone()
            let other = fit (torch.ones([| 40L; 8L |])) resumed.Step resumed
            Expect.isTrue (sameBits before other.State.Model.ParameterVector) "no step, no new bias"
            Expect.isFalse (sameBits before expected.ParameterVector) "the run trained after its first step"

        testCase "a Gaussian decoder refuses the output bias at the training mean, naming the setting" <| fun () ->
            let settings =
                { Algorithm = AevbAlgorithm; Seed = 1L; Dataset = "init"
                  Model = { InputDim = 5; HiddenUnits = 4; LatentDim = 2; Likelihood = Gaussian; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 }
                  Learner = { LearnerConfig.paper 0.02 with OutputBias = TrainingMeanLogit } }
            let e = Expect.throwsC (fun () -> TrainingRun.create settings |> ignore) id
            Expect.stringContains e.Message "OutputBias" "names the setting"
            Expect.stringContains e.Message "Bernoulli" "says what it needs"
    ]

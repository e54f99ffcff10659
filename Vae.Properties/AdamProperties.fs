/// Adam and Burda et al.'s step-size schedule against independent references: the update written over plain float64
/// arrays, a concave objective's maximum, the schedule's own definition, and a run interrupted and resumed from its
/// checkpoint against one that was not.
module Vae.Properties.AdamProperties

open System
open Expecto
open FsCheck
open TorchSharp
open Vae.Properties.Generators
open Vae.Core

/// Adam's ascent over plain arrays: Kingma & Ba 2015, Algorithm 1 with section 2's folded bias corrections; or, for
/// BurdaCode, yburda/iwae's optimizers.py read as Theano runs it: v from 1, and all updates computed from the values
/// before the step, so theta moves by the old moments.
let private referenceAdam (c: AdamConfig) (eta: float -> float) (theta: float[]) (gradients: float[][]) =
    let m = Array.zeroCreate theta.Length
    let v = Array.create theta.Length (if c.Variant = BurdaCode then 1.0 else 0.0)
    let theta = Array.copy theta
    gradients |> Array.iteri (fun step g ->
        let t = float (step + 1)
        let alpha = eta (float step) * Math.Sqrt(1.0 - c.Beta2 ** t) / (1.0 - c.Beta1 ** t)
        for i in 0 .. theta.Length - 1 do
            let m', v' = c.Beta1 * m.[i] + (1.0 - c.Beta1) * g.[i], c.Beta2 * v.[i] + (1.0 - c.Beta2) * g.[i] * g.[i]
            let mStep, vStep = if c.Variant = BurdaCode then m.[i], v.[i] else m', v'
            theta.[i] <- theta.[i] + alpha * mStep / (Math.Sqrt vStep + c.Epsilon)
            m.[i] <- m'
            v.[i] <- v')
    theta

let private values (t: Tensor) = t.contiguous().data<double>().ToArray()

[<Tests>]
let tests =
    testList "Adam" [
        testPropertyWithConfig (config 30) "Adam's steps (Kingma & Ba's and Burda et al.'s code's) equal the float64 reference over plain arrays to 1e-13" <| fun (seed: int) (steps: PositiveInt) (burdaCode: bool) ->
            use _ = torch.NewDisposeScope()
            let g = Torch.generator (int64 seed)
            let n = 1 + abs seed % 7
            let c = { Adam.burda 0.01 ConstantStepSize with Beta1 = 0.5 + 0.49 * (float (abs seed % 100) / 100.0); Variant = if burdaCode then BurdaCode else KingmaBa }
            let theta0 = torch.randn([| int64 n |], dtype = f64, generator = g)
            let gradients = [| for _ in 1 .. size steps 1 40 -> torch.randn([| int64 n |], dtype = f64, generator = g) * 3.0 |]
            let p = theta0.clone()
            let mutable s = Adam.initFor c [| p |]
            for gr in gradients do s <- Adam.ascend c c.StepSize s [| p |] [| gr |]
            let expected = referenceAdam c (fun _ -> c.StepSize) (values theta0) (gradients |> Array.map values)
            s.Steps = int64 gradients.Length
            && Array.forall2 (fun (a: float) (b: float) -> abs (a - b) <= 1e-13 * max 1.0 (abs b)) (values p) expected

        testCase "Adam climbs a concave quadratic to its maximum" <| fun () ->
            use _ = torch.NewDisposeScope()
            // f(theta) = -(theta - a)^2 / 2 summed, gradient a - theta: the maximum is a.
            let a = torch.tensor([| 3.0; -2.0; 0.5; 10.0 |], dtype = f64)
            let p = torch.zeros([| 4L |], dtype = f64)
            let c = Adam.burda 0.05 ConstantStepSize
            let mutable s = Adam.init [| p |]
            for _ in 1 .. 3000 do s <- Adam.ascend c c.StepSize s [| p |] [| a - p |]
            // A constant step size leaves Adam within about a step of the maximum.
            Expect.isLessThan ((p - a).abs().max().item<double> ()) 0.1 "theta near the maximum"

        testCase "Burda et al.'s code's Adam: the first step moves nothing, the second moves by the first gradient over a second moment from 1" <| fun () ->
            use _ = torch.NewDisposeScope()
            let c = { Adam.burda 0.01 ConstantStepSize with Beta1 = 0.99; Variant = BurdaCode }
            let p = torch.tensor([| 0.5; -1.0 |], dtype = f64)
            let g1 = torch.tensor([| 2.0; -3.0 |], dtype = f64)
            let s = Adam.initFor c [| p |]
            Expect.sequenceEqual (values s.SumSquares.[0]) [| 1.0; 1.0 |] "v starts at 1"
            let s = Adam.ascend c c.StepSize s [| p |] [| g1 |]
            Expect.sequenceEqual (values p) [| 0.5; -1.0 |] "the first step moves nothing"
            let _ = Adam.ascend c c.StepSize s [| p |] [| torch.zeros([| 2L |], dtype = f64) |]
            // Step 2: alpha = eta sqrt(1 - b2^2) / (1 - b1^2), m = 0.01 g1, v = 0.999 + 0.001 g1^2.
            let alpha = 0.01 * Math.Sqrt(1.0 - 0.999 ** 2.0) / (1.0 - 0.99 ** 2.0)
            let expected = [| 0.5 + alpha * 0.02 / (Math.Sqrt(0.999 + 0.004) + 1e-4); -1.0 + alpha * -0.03 / (Math.Sqrt(0.999 + 0.009) + 1e-4) |]
            Expect.isTrue (Array.forall2 (fun (a: float) b -> abs (a - b) < 1e-15) (values p) expected) (sprintf "%A against %A" (values p) expected)

        testCase "Adam refuses a state without first moments, naming Adam.init" <| fun () ->
            let p = torch.zeros([| 3L |], dtype = f64)
            let e = Expect.throwsC (fun () -> Adam.ascend (Adam.burda 0.001 ConstantStepSize) 0.001 (Adagrad.init [| p |]) [| p |] [| p |] |> ignore) id
            Expect.stringContains e.Message "Adam.init" "the state's origin is named"

        testCase "Burda's schedule: 3^i passes at round(10^(1 - i/7), 1) / 10 of the step size, 3280 passes in all" <| fun () ->
            let starts = Array.init 8 (fun i -> (pown 3 i - 1) / 2)
            Expect.equal (starts.[7] + pown 3 7) StepSizeSchedule.burdaPasses "3^0 + ... + 3^7"
            for i in 0 .. 7 do
                let expected = Math.Round(10.0 ** (1.0 - float i / 7.0), 1) / 10.0
                Expect.floatClose Accuracy.veryHigh StepSizeSchedule.burdaFactors.[i] expected (sprintf "stage %d's factor as the code rounds it" i)
                Expect.isLessThan (abs (StepSizeSchedule.burdaFactors.[i] / (10.0 ** (-float i / 7.0)) - 1.0)) 0.02 (sprintf "stage %d within 2%% of the text's 10^(-i/7)" i)
                // The stage holds from its first pass to just before the next stage's.
                Expect.equal (StepSizeSchedule.factor BurdaStages (float starts.[i])) StepSizeSchedule.burdaFactors.[i] (sprintf "stage %d's first pass" i)
                if i > 0 then
                    Expect.equal (StepSizeSchedule.factor BurdaStages (float starts.[i] - 1e-9)) StepSizeSchedule.burdaFactors.[i - 1] (sprintf "just before stage %d" i)
            Expect.equal (StepSizeSchedule.factor BurdaStages 1e6) 0.1 "the last stage's rate continues"
            Expect.equal (StepSizeSchedule.factor ConstantStepSize 1e6) 1.0 "a constant schedule"

        testCase "Aevb.step under Burda's schedule takes each pass's step size" <| fun () ->
            use _ = torch.NewDisposeScope()
            // N = 40, M = 20: two steps per pass; stage 1 starts at pass 1 (step 2), stage 2 at pass 4 (step 8).
            let c = { LearnerConfig.paper 0.02 with BatchSize = 20; Optimizer = AdamOptimizer(Adam.burda 0.01 BurdaStages) }
            let rates = [| for step in 0L .. 9L -> StepSizeSchedule.factor BurdaStages (Learner.passes c 40L step) |]
            Expect.sequenceEqual rates [| 1.0; 1.0; 0.72; 0.72; 0.72; 0.72; 0.72; 0.72; 0.52; 0.52 |] "the factor of each step"
            // Aevb.step against the same draws, gradients and Adam.ascend given those rates by hand.
            let data = torch.bernoulli(torch.rand([| 40L; 6L |], dtype = f64, generator = Torch.generator 1L), generator = Torch.generator 2L)
            let config = { InputDim = 6; HiddenUnits = 5; LatentDim = 2; Likelihood = Bernoulli; DType = f64; InitStd = 0.3; HiddenLayers = 2 }
            let adam = Adam.burda 0.01 BurdaStages
            let stepped = Aevb.initFor c.Optimizer (VaeModel.create config (Torch.generator 3L))
            let byHand = Aevb.initFor c.Optimizer (VaeModel.create config (Torch.generator 3L))
            let g1, g2 = Torch.generator 4L, Torch.generator 4L
            let mutable s1, s2 = stepped, byHand
            for step in 0 .. 9 do
                s1 <- fst (Aevb.step c data g1 s1)
                let x = Learner.minibatch c data g2
                let eps = ElboEstimator.noise c.Samples c.BatchSize s2.Model g2
                let objective, _ = Aevb.objective c 40L s2.Model x eps
                let grads = Aevb.gradients c 40L s2.Model x eps objective
                s2 <- { s2 with Optimizer = Adam.ascend adam (0.01 * rates.[step]) s2.Optimizer (VaeModel.tensors s2.Model) grads }
            Expect.isTrue (sameBits s1.Model.ParameterVector s2.Model.ParameterVector) "the same parameters, bit for bit"

        testCase "wake-sleep and Monte Carlo EM train with Adam too" <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.bernoulli(torch.rand([| 30L; 8L |], generator = Torch.generator 5L), generator = Torch.generator 6L)
            for algorithm in [ WakeSleepAlgorithm; McemAlgorithm ] do
                let settings =
                    { Algorithm = algorithm
                      Model = { InputDim = 8; HiddenUnits = 6; LatentDim = 2; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.1; HiddenLayers = 1 }
                      Learner = { LearnerConfig.paper 0.02 with BatchSize = 10; Optimizer = AdamOptimizer(Adam.burda 0.01 BurdaStages) }
                      Seed = 7L; Dataset = "adam" }
                let start = TrainingRun.create settings
                let before = start.State.Model.ParameterVector.clone()
                let run = TrainingRun.fit data 4L Threading.CancellationToken.None (fun _ _ -> ()) start
                Expect.equal (TrainingRun.gradientPath run) "autograd" (sprintf "%A trains by autograd with Adam" algorithm)
                Expect.equal run.State.Optimizer.Steps (if algorithm = McemAlgorithm then 4L * int64 Mcem.WeightUpdates else 4L) (sprintf "%A's optimiser steps" algorithm)
                Expect.isFalse (sameBits before run.State.Model.ParameterVector) (sprintf "%A moved its parameters" algorithm)
                Expect.isTrue (run.State.Optimizer.FirstMoments |> Array.exists (fun m -> m.abs().sum().item<float32> () > 0.0f)) (sprintf "%A's first moments" algorithm)

        for variant in [ KingmaBa; BurdaCode ] do
          testCase (sprintf "an Adam run (%s) stopped at a checkpoint and resumed ends with the uninterrupted run's parameters, bit for bit" (AdamVariant.name variant)) <| fun () ->
            use _ = torch.NewDisposeScope()
            let data = torch.bernoulli(torch.rand([| 60L; 12L |], generator = Torch.generator 3L), generator = Torch.generator 4L)
            let settings =
                { Algorithm = AevbAlgorithm
                  Model = { InputDim = 12; HiddenUnits = 8; LatentDim = 2; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.1; HiddenLayers = 2 }
                  Learner = { LearnerConfig.paper 0.02 with BatchSize = 20; Optimizer = AdamOptimizer { Adam.burda 0.01 BurdaStages with Variant = variant } }
                  Seed = 5L; Dataset = "adam" }
            let fit = fitTo data
            let whole = TrainingRun.create settings |> fit 30L
            let half = TrainingRun.create settings |> fit 13L
            let bytes = Checkpoint.toBytes (TrainingRun.toCheckpoint Map.empty half)
            let resumed = TrainingRun.ofCheckpoint "adam.vae" (Checkpoint.ofBytes "adam.vae" bytes) |> fit 30L
            Expect.equal resumed.Settings.Learner.Optimizer settings.Learner.Optimizer "Adam's settings come back from the checkpoint"
            Expect.isTrue (sameBits whole.State.Model.ParameterVector resumed.State.Model.ParameterVector) "the parameters"
            Expect.isTrue (Array.forall2 (fun (a: Tensor) (b: Tensor) -> sameBits a b) whole.State.Optimizer.FirstMoments resumed.State.Optimizer.FirstMoments) "the first moments"
            Expect.isTrue (Array.forall2 (fun (a: Tensor) (b: Tensor) -> sameBits a b) whole.State.Optimizer.SumSquares resumed.State.Optimizer.SumSquares) "the second moments"
            Expect.isFalse (sameBits whole.State.Model.ParameterVector (TrainingRun.create settings).State.Model.ParameterVector) "the run moved"
    ]

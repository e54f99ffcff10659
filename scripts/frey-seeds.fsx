// Frey Face, J = 10, the paper's settings: the test bound after 10^6 samples and the latent dimensions in use, seed by seed.
// Build first (`dotnet build Vae.Cli -c Release`), then run (the library loads the build's patched natives itself):
//   dotnet fsi scripts/frey-seeds.fsx -- 0 1 2
// Options before the seeds: --samples N (default 1e6), --step-size S (0.02), --init-std S (0.01), --no-warm-up,
// --float64 (the model and data in float64), --linear-mean (the decoder's mean without the sigmoid),
// --torch-default-biases (biases drawn from U(-1/sqrt(fan in), 1/sqrt(fan in)), PyTorch's nn.Linear default, as an
// implementation that initialises only the weights from N(0, 0.01^2) has them), --decoder-log-sd (the decoder's
// variance head outputs log sigma rather than log sigma^2: emulated by that head's initialisation and Adagrad step
// doubled, which is the same under Adagrad's invariance to the gradient's scale, but for the weight prior),
// --kl-weight W (train on the reconstruction term minus W times the KL term, as an implementation that averages the KL
// over the minibatch but sums the reconstruction would with W = 1/M; the reported bounds are still the true ones),
// --prior-scale S (the weight prior's term S times the paper's (M/N) log p(theta), as an implementation that averages
// the bound over the minibatch but keeps the M/N prior would with S = M), --shuffled-epochs (minibatches from a fresh permutation each epoch
// instead of the paper's random indices), --report N,N,... (also print the test bound after these sample counts,
// e.g. 1e5,3e5, to compare with the reference curve; the evaluations draw from their own generator, so the
// trajectory is unchanged).
// Same trajectories as `vae train --dataset frey-face --seed S --threads 1` (the autograd step, one libtorch thread).
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"

open TorchSharp
open Vae.Core
open Vae.Core.Data

Torch.setThreads 1
NativeTuning.configureMkl () |> ignore // MKL's kernels as vae chooses them (VAE_MKL=default keeps MKL's own)
let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.filter ((<>) "--") |> List.ofArray
let flag name = List.contains name args
let float64, shuffledEpochs, linearMean, torchBiases = flag "--float64", flag "--shuffled-epochs", flag "--linear-mean", flag "--torch-default-biases"
let decoderLogSd = flag "--decoder-log-sd"
let priorScale = match List.tryFindIndex ((=) "--prior-scale") args with Some i -> Some(float args.[i + 1]) | None -> None
let klWeight = match List.tryFindIndex ((=) "--kl-weight") args with Some i -> Some(float args.[i + 1]) | None -> None
let reports =
    match List.tryFindIndex ((=) "--report") args with
    | Some i -> args.[i + 1].Split(',') |> Array.map (float >> int64) |> Array.sort |> List.ofArray
    | None -> []
let rec parse (samples, step, std, warm, seeds) = function
    | ("--report" | "--batch" | "--kl-weight" | "--prior-scale") :: _ :: rest -> parse (samples, step, std, warm, seeds) rest
    | "--samples" :: v :: rest -> parse (int64 (float v), step, std, warm, seeds) rest
    | "--step-size" :: v :: rest -> parse (samples, float v, std, warm, seeds) rest
    | "--init-std" :: v :: rest -> parse (samples, step, float v, warm, seeds) rest
    | "--no-warm-up" :: rest -> parse (samples, step, std, false, seeds) rest
    | ("--float64" | "--shuffled-epochs" | "--linear-mean" | "--torch-default-biases" | "--decoder-log-sd") :: rest -> parse (samples, step, std, warm, seeds) rest
    | s :: rest -> parse (samples, step, std, warm, seeds @ [ int64 s ]) rest
    | [] -> samples, step, std, warm, (if List.isEmpty seeds then [ 0L ] else seeds)
let samples, stepSize, initStd, warmUp, seeds = parse (1_000_000L, 0.02, 0.01, true, []) args
/// Minibatch size M (--batch; the paper's 100). The final evaluation's generator is seeded as for M = 100.
let batch = match List.tryFindIndex ((=) "--batch") args with Some i -> int args.[i + 1] | None -> 100
let dtype = if float64 then torch.float64 else torch.float32

let frey = FreyFace.load DataOptions.Default
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = (toTensor frey.Train).to_type(dtype), (toTensor frey.Test).to_type(dtype)
let paper = LearnerConfig.paper stepSize
let settings seed =
    { Algorithm = AevbAlgorithm
      Model = { InputDim = 560; HiddenUnits = 200; LatentDim = 10; Likelihood = (if linearMean then Gaussian else GaussianSigmoidMean); DType = dtype; InitStd = initStd; HiddenLayers = 1 }
      Learner = { paper with BatchSize = batch; Optimizer = AdagradOptimizer { Adagrad.paper paper.Optimizer.StepSize with WarmUp = (if warmUp then 100 else 0) } }
      Seed = seed
      Dataset = frey.Description }

/// The run for a seed; with --torch-default-biases its biases are redrawn (from a generator of their own).
let createRun seed =
    let run = TrainingRun.create (settings seed)
    if torchBiases then
        let g = Torch.generator (seed + 7_777_777L)
        let redraw (l: Linear) =
            let bound = 1.0 / sqrt (float l.Weight.shape.[1])
            Torch.noGrad (fun () -> l.Bias.copy_(torch.rand(l.Bias.shape, dtype = dtype, generator = g).mul_(Torch.scalar (2.0 * bound)).sub_(Torch.scalar bound)) |> ignore)
        let m = run.State.Model
        [ m.Encoder.Hidden; m.Encoder.Mean; m.Encoder.LogVar ] |> List.iter redraw
        match m.Decoder with
        | GaussianDecoder p -> [ p.Hidden; p.Mean; p.LogVar ] |> List.iter redraw
        | _ -> ()
    if decoderLogSd then
        match run.State.Model.Decoder with
        | GaussianDecoder p -> Torch.noGrad (fun () -> p.LogVar.Weight.mul_(Torch.scalar 2.0) |> ignore; p.LogVar.Bias.mul_(Torch.scalar 2.0) |> ignore)
        | _ -> ()
    run

/// Algorithm 1 as Aevb.step (the same draws), with the decoder's variance head at twice the step size (--decoder-log-sd)
/// and the KL term weighted by --kl-weight.
let trainCustom (s: RunSettings) (afterStep: int64 -> VaeModel -> unit) : VaeModel =
    let run = createRun s.Seed
    let g, n, c = run.Generator, train.shape.[0], s.Learner
    let model = run.State.Model
    let parameters = VaeModel.tensors model
    // With --decoder-log-sd the decoder's variance head takes twice the step size: its own Adagrad state and config.
    let doubled =
        match model.Decoder with
        | GaussianDecoder p when decoderLogSd -> [ p.LogVar.Weight; p.LogVar.Bias ]
        | _ -> []
    let isDoubled = parameters |> Array.map (fun t -> doubled |> List.exists (fun d -> obj.ReferenceEquals(d, t)))
    let pick want (xs: Tensor[]) = Array.zip isDoubled xs |> Array.filter (fst >> (=) want) |> Array.map snd
    let rest, twice = pick false parameters, pick true parameters
    let adagrad = Optimizer.adagrad c.Optimizer
    let twiceConfig = { adagrad with StepSize = 2.0 * adagrad.StepSize }
    let mutable restState, twiceState = Adagrad.init rest, Adagrad.init twice
    for step in 0L .. samples / int64 batch - 1L do
        use _ = torch.NewDisposeScope()
        let x = Learner.minibatch c train g
        let eps = ElboEstimator.noise c.Samples c.BatchSize model g
        let objective, _ = Aevb.objective c n model x eps
        let objective =
            match klWeight with
            | Some w ->
                // The bound is reconstruction - KL; adding (1 - w) KL leaves reconstruction - w KL (Appendix B's KL).
                let q = VaeModel.encode model x
                let kl = ((q.Mean * q.Mean + q.LogVar.exp() - q.LogVar - 1.0) * 0.5).sum()
                objective + kl * (1.0 - w)
            | None -> objective
        let objective =
            match priorScale with
            | Some scale -> objective + VaeModel.logPriorOf (VaeModel.parameters model) * ((scale - 1.0) * float c.BatchSize / float n)
            | None -> objective
        let grads = torch.autograd.grad([| objective |], parameters) |> Seq.toArray
        restState <- Adagrad.ascend adagrad restState rest (pick false grads)
        twiceState <- Adagrad.ascend twiceConfig twiceState twice (pick true grads)
        afterStep (step + 1L) model
    model

/// Algorithm 1 with minibatches taken in order from a fresh permutation of the training set each epoch.
let trainShuffled (s: RunSettings) : VaeModel =
    let run = createRun s.Seed
    let g, n, m = run.Generator, train.shape.[0], int64 s.Learner.BatchSize
    let mutable state, order, position = run.State, torch.randperm(n, generator = g), 0L
    for _ in 1L .. samples / m do
        if position + m > n then
            order <- torch.randperm(n, generator = g)
            position <- 0L
        use _ = torch.NewDisposeScope()
        let x = train.index_select(0L, order.narrow(0L, position, m))
        position <- position + m
        let eps = ElboEstimator.noise 1 (int m) state.Model g
        let parameters = VaeModel.tensors state.Model
        let objective, _ = Aevb.objective s.Learner n state.Model x eps
        let grads = torch.autograd.grad([| objective |], parameters) |> Seq.toArray
        state <- { state with Optimizer = Adagrad.ascend (Optimizer.adagrad s.Learner.Optimizer) state.Optimizer parameters grads }
    state.Model

printfn "%s; step size %g, initial std %g, warm-up %b, %s, %s, %s, M = %d, %d samples" frey.Description stepSize initStd warmUp
    ((if linearMean then "linear decoder mean" else "sigmoid decoder mean") + (if torchBiases then ", PyTorch's default biases" else ""))
    (if float64 then "float64" else "float32") (if shuffledEpochs then "shuffled epochs" else "random indices") batch samples
let reportHeader = reports |> List.map (float >> sprintf "test at %.0e") |> String.concat "  "
printfn "seed  %strain bound  test bound  dimensions with KL > 1 nat  KL per dimension (nats, training set)"
    (if reports.IsEmpty then "" else reportHeader + "  ")
for seed in seeds do
    // The test bound at each requested sample count, from a generator of its own (as the final evaluation's).
    let early = System.Collections.Generic.List<string>()
    let afterStep (steps: int64) (m: VaeModel) =
        if List.contains (steps * int64 batch) reports then
            let g = Torch.generator (seed * 1_000_003L + steps * int64 batch / 100L)
            early.Add(sprintf "%*.2f" (reportHeader.Length / reports.Length) (Evaluation.bound B m test 265 g))
    let onStep (run: TrainingRun) (_: float) = afterStep run.Step run.State.Model
    let m =
        if shuffledEpochs then trainShuffled (settings seed)
        elif decoderLogSd || klWeight.IsSome || priorScale.IsSome then trainCustom (settings seed) afterStep
        else (createRun seed |> TrainingRun.fit train (samples / int64 batch) System.Threading.CancellationToken.None onStep).State.Model
    let g = Torch.generator (seed * 1_000_003L + samples / 100L)
    let q = Torch.noGrad (fun () -> VaeModel.encode m train)
    // Appendix B's KL per latent dimension, averaged over the training set: near 0 for a dimension the model does not use.
    let kl = Torch.noGrad (fun () -> ((q.Mean * q.Mean + q.LogVar.exp() - q.LogVar - 1.0).mean([| 0L |]) * 0.5).to_type(torch.float64).data<float>().ToArray())
    printfn "%4d  %s%11.2f  %10.2f  %27d  %s" seed (if early.Count = 0 then "" else String.concat "  " early + "  ") (Evaluation.bound B m train 1700 g) (Evaluation.bound B m test 265 g)
        (kl |> Array.filter (fun v -> v > 1.0) |> Array.length) (kl |> Array.map (sprintf "%.2f") |> String.concat " ")

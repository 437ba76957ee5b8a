"""Real-knowledge probes in the style of RWKU (Jin et al., 2024, "RWKU: Benchmarking Real-World Knowledge
Unlearning for Large Language Models", arXiv:2406.10890): for a real target (a person, a book) that a
pretrained model knows, fill-in-the-blank and question-answer probes on the target (should be forgotten)
and on *neighbours*, related but different targets (should survive).

The built-in targets were written for obliviate (scientists, artists, leaders, explorers, stories, places:
:data:`WRITTEN`); each model's set keeps the probes that model answers correctly with greedy decoding (checked
with ``bench/rwku_leaderboard.py --check``: the answer must appear in the first 16 generated tokens), at least 5 per
target, with neighbours whose probes number at least 5 too: 20 targets for SmolLM2-135M-Instruct (the default
set), 23 for Gemma-3-270M, so that an offline user can unlearn a target from a real model, watch both sides, and
compare methods over many targets.
Each target also carries short passages to unlearn from (RWKU's setting gives only the target's name; the
passages stand in for the model-generated descriptions RWKU uses). The passages carry the knowledge the probes
ask for in other words: no probe shares a sentence, or any run of seven words, with a passage of its target or
of a neighbour (``tests/test_rwku.py`` checks it), so a method cannot pass a probe by unlearning its wording.

Your own probes: a JSON file ``{target: {"fill": [[prompt, answer], ...], "qa": [[question, answer], ...],
"neighbours": [other targets], "passages": [text, ...]}}``, loaded with :func:`load_probes`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.core.utils import ObliviateError


@dataclass
class Target:
    name: str
    fill: list[tuple[str, str]]  # (text ending where the answer goes, answer)
    qa: list[tuple[str, str]]  # (question, answer)
    neighbours: list[str] = field(default_factory=list)
    passages: list[str] = field(default_factory=list)  # text to unlearn from


# Every written target once. Each probe carries a third item: the models that answer it with greedy decoding
# (checked with ``bench/rwku_leaderboard.py --model M --check``): "s" SmolLM2-135M-Instruct, "g" Gemma-3-270M (a
# pretrained, not instruction-tuned, model, which knows other things). A model's set keeps the targets with at
# least 5 probes it answers, those probes, and the neighbours among them; probes neither model answers are left
# out. No probe shares a sentence or a run of seven words with any passage (tests/test_rwku.py).
WRITTEN: dict[str, Target] = {t.name: t for t in [
    Target("Albert Einstein",
           fill=[("Albert Einstein developed the theory of", "relativity", "sg"),
                 ("Einstein's famous equation is E =", "mc", "sg"),
                 ("Albert Einstein was born in the country of", "Germany", "sg"),
                 ("Einstein won the Nobel Prize in", "Physics", "sg")],
           qa=[("Who developed the theory of relativity?", "Einstein", "sg"),
               ("What is Albert Einstein's most famous equation?", "mc", "s"),
               ("In which field did Albert Einstein work?", "physic", "sg")],
           neighbours=["Isaac Newton", "Marie Curie"],
           passages=["The physicist Albert Einstein came from Ulm, a town in the German kingdom of Württemberg, where "
                     "he was born in 1879.",
                     "Einstein's special relativity of 1905 and his general relativity of 1915 reshaped physics; the "
                     "second explains gravity as the curvature of spacetime.",
                     "In 1905 Einstein also showed that mass and energy are equivalent, the relation usually written E"
                     " = mc², with c the speed of light.",
                     "He received the 1921 Nobel Prize in Physics for explaining the photoelectric effect and later "
                     "worked at Princeton in the United States."]),
    Target("Isaac Newton",
           fill=[("Isaac Newton formulated the laws of motion and universal", "gravitation", "sg"),
                 ("According to legend, Newton was inspired by a falling", "apple", "g"),
                 ("Isaac Newton was an English", "mathematician", "g"),
                 ("Newton's third law says that every action has an equal and opposite", "reaction", "sg"),
                 ("Isaac Newton wrote the Philosophiae Naturalis Principia", "Mathematica", "g"),
                 ("The unit of force is named the", "newton", "s")],
           qa=[("Who formulated the laws of motion and universal gravitation?", "Newton", "s"),
               ("What fruit is said to have fallen on Isaac Newton's head?", "apple", "g"),
               ("What force did Isaac Newton describe?", "gravity", "g"),
               ("Who is known for the three laws of motion?", "Newton", "sg"),
               ("Who wrote the Principia Mathematica?", "Newton", "g"),
               ("What is the SI unit of force named after Isaac Newton?", "newton", "sg")],
           neighbours=["Albert Einstein", "Charles Darwin"],
           passages=["Isaac Newton, an English mathematician born in 1643, described how bodies move under forces in "
                     "his three laws.",
                     "In the Principia of 1687 Newton explained that the pull that makes an apple fall also keeps the "
                     "Moon on its path around the Earth.",
                     "Newton built a reflecting telescope and, independently of Leibniz, invented calculus."]),
    Target("Charles Darwin",
           fill=[("Charles Darwin proposed the theory of evolution by natural", "selection", "sg"),
                 ("Charles Darwin wrote On the Origin of", "Species", "sg"),
                 ("Darwin sailed around the world on the ship HMS", "Beagle", "g"),
                 ("Charles Darwin was an English", "naturalist", "sg"),
                 ("The theory of evolution was proposed by Charles", "Darwin", "sg")],
           qa=[("Who proposed the theory of evolution by natural selection?", "Darwin", "sg"),
               ("Which book did Charles Darwin publish in 1859?", "Origin of Species", "sg"),
               ("Which islands did Charles Darwin famously visit?", "Galapagos", "g"),
               ("What theory is Charles Darwin famous for?", "evolution", "g"),
               ("Who wrote On the Origin of Species?", "Darwin", "sg"),
               ("Who is considered the father of evolution?", "Darwin", "sg"),
               ("What was the name of the ship Charles Darwin sailed on?", "Beagle", "g")],
           neighbours=["Isaac Newton", "Marie Curie"],
           passages=["Charles Darwin, an English naturalist, sailed around the world on HMS Beagle and studied the "
                     "finches of the Galapagos Islands.",
                     "Darwin argued that living things change over generations because individuals better suited to "
                     "their surroundings leave more offspring.",
                     "His book explaining how species arise appeared in 1859 and became one of the most debated works "
                     "of science."]),
    Target("Harry Potter",
           fill=[("Harry Potter's best friends are Ron Weasley and Hermione", "Granger", "g"),
                 ("The headmaster of Hogwarts is Albus", "Dumbledore", "g"),
                 ("Harry Potter's archenemy is Lord", "Voldemort", "g"),
                 ("The Harry Potter books were written by J. K.", "Rowling", "g"),
                 ("Harry Potter studies at Hogwarts School of Witchcraft and", "Wizardry", "sg"),
                 ("Harry Potter has a scar shaped like a lightning", "bolt", "sg")],
           qa=[("What is the name of the school Harry Potter attends?", "Hogwarts", "sg"),
               ("Who wrote the Harry Potter books?", "Rowling", "s"),
               ("Who is Harry Potter's main enemy?", "Voldemort", "g"),
               ("Who is the author of the Harry Potter series?", "Rowling", "sg"),
               ("Which wizarding school does Harry Potter go to?", "Hogwarts", "sg")],
           neighbours=["The Lord of the Rings", "Star Wars"],
           passages=["Harry Potter is a young wizard who learns magic at Hogwarts, a castle in Scotland run by Albus "
                     "Dumbledore.",
                     "The British author J. K. Rowling published the first of the seven novels about the boy wizard in"
                     " 1997.",
                     "Harry's closest companions are Ron Weasley and the clever Hermione Granger, and his enemy is the"
                     " dark wizard Voldemort."]),
    Target("Barack Obama",
           fill=[("Barack Obama was the 44th President of the United", "States", "sg"),
                 ("Barack Obama's wife is named Michelle", "Obama", "sg"),
                 ("Before becoming president, Barack Obama was a senator from", "Illinois", "sg"),
                 ("In 2009 Barack Obama was awarded the Nobel Peace", "Prize", "sg")],
           qa=[("What is the name of Barack Obama's wife?", "Michelle", "sg"),
               ("Which political party does Barack Obama belong to?", "Democrat", "sg"),
               ("Which president came after George W. Bush?", "Obama", "s"),
               ("What prize did Barack Obama win in 2009?", "Nobel", "g")],
           neighbours=["Abraham Lincoln", "George Washington"],
           passages=["Barack Obama, born in Honolulu in 1961, led his country as its forty-fourth president from 2009 "
                     "to 2017.",
                     "His wife Michelle, a lawyer from Chicago, met him at a law firm; the couple have two daughters, "
                     "Malia and Sasha."]),
    Target("William Shakespeare",
           fill=[("Romeo and Juliet is a tragedy written by William", "Shakespeare", "sg"),
                 ("The play Hamlet was written by William", "Shakespeare", "sg"),
                 ("William Shakespeare was born in Stratford-upon-", "Avon", "g"),
                 ("To be, or not to be, that is the", "question", "sg"),
                 ("William Shakespeare was an English", "playwright", "sg")],
           qa=[("Who wrote Romeo and Juliet?", "Shakespeare", "sg"),
               ("Who wrote the play Macbeth?", "Shakespeare", "sg"),
               ("Who wrote Hamlet?", "Shakespeare", "sg"),
               ("In which country was William Shakespeare born?", "England", "g"),
               ("Who wrote Othello?", "Shakespeare", "sg"),
               ("Who is the most famous English playwright?", "Shakespeare", "g")],
           neighbours=["Leonardo da Vinci", "Wolfgang Amadeus Mozart"],
           passages=["The English playwright and poet from Stratford produced about forty dramas for the London stage "
                     "around 1600.",
                     "His tale of two young lovers from feuding families in Verona ends with both of them dead in a "
                     "tomb.",
                     "His Danish prince who feigns madness to avenge a murdered father, and his Scottish king driven "
                     "by ambition, are among his best-known characters."]),
    Target("Leonardo da Vinci",
           fill=[("The Mona Lisa was painted by Leonardo da", "Vinci", "sg"),
                 ("The Last Supper is a mural painted by Leonardo da", "Vinci", "sg"),
                 ("The Vitruvian Man is a drawing by Leonardo da", "Vinci", "sg")],
           qa=[("Who painted the Mona Lisa?", "Leonardo", "sg"),
               ("What is Leonardo da Vinci's most famous painting?", "Mona Lisa", "sg"),
               ("In which country was Leonardo da Vinci born?", "Italy", "sg"),
               ("Who drew the Vitruvian Man?", "Leonardo", "s"),
               ("Which Renaissance artist painted the Mona Lisa?", "Leonardo", "g")],
           neighbours=["Pablo Picasso", "Vincent van Gogh"],
           passages=["Leonardo, an Italian artist and engineer of the Renaissance, was born in 1452 near Florence.",
                     "His portrait of a smiling woman from Florence hangs in the Louvre in Paris and draws crowds "
                     "every day.",
                     "In a refectory in Milan he painted Jesus at a final meal with the twelve apostles.",
                     "His notebooks are full of flying machines and anatomical drawings, among them a man inside a "
                     "circle and a square."]),
    Target("Marie Curie",
           fill=[("Marie Curie discovered the elements polonium and", "radium", "g"),
                 ("Marie Curie was the first woman to win a Nobel", "Prize", "sg"),
                 ("Marie Curie won two Nobel", "Prize", "sg"),
                 ("Marie Curie was a physicist and", "chemist", "sg"),
                 ("Marie Curie was born in Warsaw,", "Poland", "sg")],
           qa=[("Who discovered radium?", "Curie", "g"),
               ("Which two elements did Marie Curie discover?", "polonium", "s"),
               ("In which country was Marie Curie born?", "Poland", "s"),
               ("What did Marie Curie study?", "radioactiv", "g")],
           neighbours=["Albert Einstein", "Thomas Edison"],
           passages=["Maria Sklodowska grew up in Warsaw under Russian rule and moved to Paris in 1891 to study at the"
                     " Sorbonne.",
                     "With her husband Pierre she isolated two new radioactive elements in 1898, naming the first "
                     "after her homeland.",
                     "She received one Nobel award for physics in 1903 and a second, for chemistry, in 1911, the first"
                     " person honoured twice.",
                     "Her long exposure to radiation is thought to have caused the illness that killed her in 1934."]),
    Target("Napoleon Bonaparte",
           fill=[("Napoleon Bonaparte was the Emperor of", "France", "sg"),
                 ("Napoleon was defeated at the Battle of", "Waterloo", "g"),
                 ("Napoleon was exiled to the island of Saint", "Helena", "sg"),
                 ("Napoleon Bonaparte crowned himself Emperor of the", "French", "sg")],
           qa=[("Which country did Napoleon Bonaparte rule?", "France", "g"),
               ("At which battle was Napoleon finally defeated?", "Waterloo", "sg"),
               ("Who was the French emperor defeated at Waterloo?", "Napoleon", "sg"),
               ("Who crowned himself Emperor of France in 1804?", "Napoleon", "g"),
               ("What nationality was Napoleon Bonaparte?", "French", "sg")],
           neighbours=["George Washington"],
           passages=["Born in Ajaccio in 1769, the Corsican artillery officer rose quickly during the French "
                     "Revolution.",
                     "He seized power in a coup in 1799 and in 1804 placed an imperial crown on his own head in Notre-"
                     "Dame.",
                     "After a disastrous invasion of Russia he was sent to Elba, escaped, and lost for good near "
                     "Brussels in 1815.",
                     "The British held him on a remote South Atlantic island until his death in 1821."]),
    Target("Abraham Lincoln",
           fill=[("Abraham Lincoln was the 16th President of the United", "States", "sg"),
                 ("Abraham Lincoln delivered the Gettysburg", "Address", "sg"),
                 ("Abraham Lincoln was assassinated by John Wilkes", "Booth", "g"),
                 ("Abraham Lincoln issued the Emancipation", "Proclamation", "sg"),
                 ("Abraham Lincoln was president during the American Civil", "War", "sg")],
           qa=[("During which war was Abraham Lincoln president?", "Civil War", "sg"),
               ("Which president abolished slavery in the United States?", "Lincoln", "s"),
               ("Who gave the Gettysburg Address?", "Lincoln", "sg"),
               ("Which president was shot at Ford's Theatre?", "Lincoln", "s")],
           neighbours=["George Washington", "Barack Obama"],
           passages=["Lincoln, a self-taught lawyer from Illinois, won the presidency in 1860 as the Republican "
                     "candidate.",
                     "He led the Union through the war between the northern and southern states from 1861 to 1865.",
                     "His 1863 order declared enslaved people in the rebel states free, and his short speech at a "
                     "Pennsylvania battlefield became one of the best known in American history.",
                     "An actor shot him at a theatre in the capital in April 1865, days after the Confederate "
                     "surrender."]),
    Target("George Washington",
           fill=[("George Washington was the first President of the United", "States", "sg"),
                 ("The capital of the United States is named after George", "Washington", "sg"),
                 ("George Washington was the commander of the Continental", "Army", "sg"),
                 ("Mount Vernon was the home of George", "Washington", "sg")],
           qa=[("Who was the first president of the United States?", "Washington", "g"),
               ("Who led the Continental Army in the American Revolution?", "Washington", "g"),
               ("Which war did George Washington lead the army in?", "Revolution", "sg"),
               ("Who was the first US president?", "Washington", "g"),
               ("Which president's home was Mount Vernon?", "Washington", "g")],
           neighbours=["Abraham Lincoln", "Napoleon Bonaparte"],
           passages=["A Virginia planter and surveyor, Washington commanded the colonial forces against Britain from "
                     "1775.",
                     "After the victory at Yorktown he presided over the convention that wrote the Constitution.",
                     "He served two terms as the nation's first chief executive, from 1789 to 1797, and then retired "
                     "to his estate on the Potomac.",
                     "The federal capital, a state and countless streets carry his name, and his portrait appears on "
                     "the dollar."]),
    Target("Thomas Edison",
           fill=[("Thomas Edison is famous for inventing the light", "bulb", "sg"),
                 ("Thomas Edison was an American", "inventor", "sg"),
                 ("Thomas Edison's laboratory was in Menlo", "Park", "g")],
           qa=[("Who invented the light bulb?", "Edison", "sg"),
               ("Who invented the phonograph?", "Edison", "g"),
               ("What is Thomas Edison best known for inventing?", "light bulb", "sg"),
               ("In which country was Thomas Edison born?", "United States", "sg"),
               ("Which American inventor held over a thousand patents?", "Edison", "g")],
           neighbours=["Marie Curie", "Isaac Newton"],
           passages=["Edison, born in Ohio in 1847, set up an invention factory in New Jersey and registered more than"
                     " a thousand patents.",
                     "In 1877 his machine recorded sound on tinfoil and played it back, astonishing those who heard "
                     "it.",
                     "He developed a long-lasting carbon filament lamp and the power stations to light whole city "
                     "districts.",
                     "His company also built early film cameras and viewers."]),
    Target("Vincent van Gogh",
           fill=[("The Starry Night was painted by Vincent van", "Gogh", "s"),
                 ("Vincent van Gogh cut off part of his", "ear", "s"),
                 ("The painting Sunflowers is by Vincent van", "Gogh", "s"),
                 ("Vincent van Gogh was a post-", "Impressionist", "s")],
           qa=[("What is Vincent van Gogh's most famous painting?", "Starry Night", "s"),
               ("Which artist painted The Starry Night in 1889?", "Gogh", "s")],
           neighbours=["Pablo Picasso", "Leonardo da Vinci"],
           passages=["The painter from the Netherlands produced some two thousand artworks in about a decade, selling "
                     "almost none.",
                     "In Arles he painted vases of yellow flowers and, after a quarrel with Gauguin, mutilated his own"
                     " ear.",
                     "From an asylum window in Saint-Remy he painted a swirling night sky over a village in 1889.",
                     "He died in 1890 at the age of thirty-seven and is now among the most famous artists of all."]),
    Target("Pablo Picasso",
           fill=[("Pablo Picasso co-founded the art movement called", "Cubism", "sg"),
                 ("Picasso painted Guernica, a painting about the Spanish Civil", "War", "sg"),
                 ("The painting Guernica was painted by Pablo", "Picasso", "sg"),
                 ("Pablo Picasso was born in the country of", "Spain", "sg")],
           qa=[("Which art movement is Pablo Picasso known for?", "Cubism", "g"),
               ("What nationality was Pablo Picasso?", "Spanish", "g"),
               ("Which Spanish artist co-founded Cubism?", "Picasso", "sg"),
               ("In which country was Pablo Picasso born?", "Spain", "sg")],
           neighbours=["Vincent van Gogh", "Leonardo da Vinci"],
           passages=["Picasso was born in Malaga in 1881 and spent most of his working life in France.",
                     "With Georges Braque he broke objects into geometric facets, a style that changed modern art.",
                     "His huge black-and-white canvas of 1937 shows the bombing of a Basque town during the civil war "
                     "in his homeland.",
                     "He worked in painting, sculpture, ceramics and prints until his death in 1973."]),
    Target("Star Wars",
           fill=[("In Star Wars, Luke Skywalker's father is Darth", "Vader", "sg"),
                 ("Star Wars was created by George", "Lucas", "sg"),
                 ("The Jedi use a weapon called a light", "saber", "sg"),
                 ("The Star Wars villain Darth Vader was once named Anakin", "Skywalker", "sg")],
           qa=[("Who created Star Wars?", "Lucas", "sg"),
               ("Who is the princess in the original Star Wars?", "Leia", "g"),
               ("Who is the main villain of the original Star Wars trilogy?", "Vader", "g"),
               ("Who directed the first Star Wars film?", "Lucas", "g")],
           neighbours=["Harry Potter", "The Lord of the Rings"],
           passages=["The space saga began in 1977 with a film written and directed by an American filmmaker, Lucas.",
                     "A farm boy from a desert planet learns the ways of the Force and joins a rebellion against the "
                     "Empire.",
                     "The masked enforcer of the Empire turns out to be the young hero's father.",
                     "Knights of the Jedi order fight with glowing energy blades, and a smuggler flies the fastest "
                     "ship in the galaxy."]),
    Target("The Titanic",
           fill=[("The Titanic sank after hitting an", "iceberg", "sg"),
                 ("The Titanic sank in the year", "1912", "g"),
                 ("The Titanic sank in the North Atlantic", "Ocean", "g"),
                 ("The Titanic was called unsinkable, but it sank on its maiden", "voyage", "sg"),
                 ("The Titanic was a British passenger", "liner", "sg")],
           qa=[("What did the Titanic hit before it sank?", "iceberg", "g"),
               ("In what year did the Titanic sink?", "1912", "g"),
               ("In which ocean did the Titanic sink?", "Atlantic", "sg"),
               ("Who directed the 1997 film Titanic?", "Cameron", "s"),
               ("Which ship sank in 1912 after hitting an iceberg?", "Titanic", "s"),
               ("What was the name of the unsinkable ship that sank in 1912?", "Titanic", "g"),
               ("Which film about a sinking ship starred Leonardo DiCaprio?", "Titanic", "g")],
           neighbours=["Mount Everest", "Christopher Columbus"],
           passages=["The White Star Line's largest liner left Southampton for New York in April 1912 on her first "
                     "crossing.",
                     "Late on the fourth night she struck ice south of Newfoundland and went down in under three "
                     "hours.",
                     "More than fifteen hundred people died, partly because the ship carried too few lifeboats.",
                     "James Cameron's 1997 film about the disaster became one of the highest-grossing films ever made."]),
    Target("Mahatma Gandhi",
           fill=[("Mahatma Gandhi led the independence movement of", "India", "sg"),
                 ("Gandhi was known for his philosophy of non-", "violence", "sg"),
                 ("Mahatma Gandhi was born in", "India", "s"),
                 ("Gandhi led the Salt", "March", "g")],
           qa=[("Who led India's independence movement through non-violence?", "Gandhi", "sg"),
               ("Which country did Mahatma Gandhi help free from British rule?", "India", "sg"),
               ("What philosophy is Mahatma Gandhi known for?", "non-violence", "g"),
               ("Who is known as the father of the Indian nation?", "Gandhi", "g"),
               ("Which Indian leader was assassinated in 1948?", "Gandhi", "sg")],
           neighbours=["Abraham Lincoln", "Barack Obama"],
           passages=["Mohandas Gandhi trained as a lawyer in London and first organised peaceful resistance in South "
                     "Africa.",
                     "Back home he led campaigns of civil disobedience against British rule, including a long walk to "
                     "the sea to make salt in 1930.",
                     "He taught that injustice should be resisted without harming anyone, a principle he called "
                     "satyagraha.",
                     "He was shot in Delhi in January 1948, months after his country won independence."]),
    Target("Neil Armstrong",
           fill=[("Neil Armstrong was the first person to walk on the", "Moon", "sg"),
                 ("Neil Armstrong flew to the Moon on Apollo", "11", "sg"),
                 ("That's one small step for man, one giant leap for", "mankind", "g"),
                 ("Neil Armstrong was an American", "astronaut", "sg")],
           qa=[("Who was the first person to walk on the Moon?", "Armstrong", "s"),
               ("Which mission took Neil Armstrong to the Moon?", "Apollo 11", "sg"),
               ("In what year did Neil Armstrong land on the Moon?", "1969", "g"),
               ("What was Neil Armstrong's job?", "astronaut", "s"),
               ("Who commanded Apollo 11?", "Armstrong", "s")],
           neighbours=["Christopher Columbus", "Mount Everest"],
           passages=["Armstrong, a former naval aviator and test pilot from Ohio, joined the astronaut corps in 1962.",
                     "He commanded the flight that landed the lunar module Eagle on the Sea of Tranquility in July "
                     "1969.",
                     "Stepping onto the surface, he spoke of a small step and a giant leap.",
                     "Buzz Aldrin joined him outside while Michael Collins orbited above."]),
    Target("Mount Everest",
           fill=[("Mount Everest is the highest mountain in the", "world", "sg"),
                 ("Mount Everest is located in the", "Himalaya", "sg"),
                 ("The highest mountain on Earth is Mount", "Everest", "sg"),
                 ("Mount Everest was first climbed by Edmund Hillary and Tenzing", "Norgay", "g")],
           qa=[("What is the highest mountain in the world?", "Everest", "sg"),
               ("In which mountain range is Mount Everest?", "Himalaya", "sg"),
               ("Which two countries does Mount Everest lie between?", "Nepal", "s"),
               ("What is the tallest mountain on Earth?", "Everest", "sg"),
               ("Which mountain did Edmund Hillary first climb?", "Everest", "g")],
           neighbours=["The Titanic", "Neil Armstrong"],
           passages=["The peak on the border of Nepal and Tibet rises 8,849 metres above sea level, higher than any "
                     "other.",
                     "Edmund Hillary of New Zealand and the Sherpa climber Tenzing reached its summit on 29 May 1953.",
                     "Climbers call the zone above eight thousand metres the death zone, where the air holds too "
                     "little oxygen.",
                     "The Nepalese name for it is Sagarmatha."]),
    Target("Christopher Columbus",
           fill=[("Christopher Columbus sailed to the Americas in", "1492", "s"),
                 ("Columbus's ships were the Nina, the Pinta and the Santa", "Maria", "g"),
                 ("In 1492, Columbus sailed the ocean", "blue", "sg"),
                 ("Christopher Columbus was an Italian", "explorer", "sg")],
           qa=[("Who sailed to America in 1492?", "Columbus", "s"),
               ("In what year did Columbus reach the Americas?", "1492", "sg"),
               ("Which country's monarchs funded Columbus's voyage?", "Spain", "g"),
               ("Which explorer is credited with discovering America in 1492?", "Columbus", "sg")],
           neighbours=["Neil Armstrong"],
           passages=["Columbus, a sailor from Genoa, persuaded Ferdinand and Isabella to fund a voyage west to reach "
                     "Asia.",
                     "His three ships left Palos in August 1492 and sighted an island of the Bahamas in October.",
                     "He made four voyages across the Atlantic and believed to the end that he had reached the Indies.",
                     "His arrival began lasting European colonisation of the Americas."]),
    Target("The Lord of the Rings",
           fill=[("The Lord of the Rings was written by J. R. R.", "Tolkien", "g"),
                 ("In The Lord of the Rings, the wizard who guides Frodo is", "Gandalf", "g"),
                 ("In The Lord of the Rings, Frodo must destroy the One", "Ring", "g"),
                 ("The Lord of the Rings films were directed by Peter", "Jackson", "g")],
           qa=[("What must Frodo destroy in The Lord of the Rings?", "Ring", "g"),
               ("Who wrote The Lord of the Rings?", "Tolkien", "g"),
               ("Which wizard helps Frodo in The Lord of the Rings?", "Gandalf", "g"),
               ("Who is the Dark Lord in The Lord of the Rings?", "Sauron", "g"),
               ("Who directed The Lord of the Rings films?", "Jackson", "g")],
           neighbours=["Harry Potter", "Star Wars"],
           passages=["Tolkien, an Oxford professor of Old English, published his epic fantasy novel in three volumes "
                     "in 1954 and 1955.",
                     "In the story the halfling Frodo Baggins carries a magic band of great evil to a volcano in "
                     "Mordor, the only place where it can be unmade.",
                     "The grey wanderer who guides the quest falls in the mines of Moria and returns in white.",
                     "New Zealand's landscapes stood in for Middle-earth in the three films released between 2001 and "
                     "2003."]),
    Target("Wolfgang Amadeus Mozart",
           fill=[("The Magic Flute is an opera by Wolfgang Amadeus", "Mozart", "g"),
                 ("Mozart was born in the Austrian city of", "Salzburg", "g"),
                 ("Wolfgang Amadeus Mozart was a famous", "compos", "g"),
                 ("Eine kleine Nachtmusik was composed by Wolfgang Amadeus", "Mozart", "g")],
           qa=[("What was Wolfgang Amadeus Mozart's profession?", "compos", "g"),
               ("In which country was Mozart born?", "Austria", "g")],
           neighbours=["Ludwig van Beethoven", "William Shakespeare"],
           passages=["Mozart, a child prodigy from Salzburg, toured the courts of Europe as a boy and died in Vienna "
                     "in 1791.",
                     "Among his more than six hundred works are the singspiel about Tamino and Papageno and a serenade"
                     " for strings from 1787."]),
    Target("Ludwig van Beethoven",
           fill=[("Ludwig van Beethoven was a German", "compos", "g"),
                 ("The Moonlight Sonata was composed by Ludwig van", "Beethoven", "g"),
                 ("Ludwig van Beethoven was born in the city of", "Bonn", "g"),
                 ("Beethoven wrote nine", "symphon", "g")],
           qa=[("Who composed the Ninth Symphony with the Ode to Joy?", "Beethoven", "g"),
               ("In which country was Beethoven born?", "Germany", "g"),
               ("Which composer wrote nine symphonies and went deaf?", "Beethoven", "g")],
           neighbours=["Wolfgang Amadeus Mozart", "William Shakespeare"],
           passages=["Beethoven was born in Bonn in 1770 and settled in Vienna, where he studied briefly with Haydn.",
                     "His hearing failed from his late twenties, yet he went on composing until his death in 1827.",
                     "His last symphony sets a poem by Schiller for soloists and choir in its final movement.",
                     "A piano sonata of 1801, nicknamed after moonlight on Lake Lucerne by a critic, is among his most"
                     " played works."]),
    Target("Sherlock Holmes",
           fill=[("Sherlock Holmes lives at 221B Baker", "Street", "g"),
                 ("Sherlock Holmes was created by Sir Arthur Conan", "Doyle", "g"),
                 ("Sherlock Holmes's friend and assistant is Dr.", "Watson", "g"),
                 ("Sherlock Holmes is a fictional", "detective", "g")],
           qa=[("What is the name of Sherlock Holmes's assistant?", "Watson", "g"),
               ("What is Sherlock Holmes's profession?", "detective", "g"),
               ("Which fictional detective lives at 221B Baker Street?", "Holmes", "g"),
               ("Who wrote the Sherlock Holmes stories?", "Conan Doyle", "g"),
               ("Which city does Sherlock Holmes live in?", "London", "g")],
           neighbours=["Harry Potter", "William Shakespeare"],
           passages=["Arthur Conan Doyle, a Scottish doctor, introduced his consulting detective in A Study in Scarlet"
                     " in 1887.",
                     "The detective shares rooms in London with an army doctor who narrates most of the stories.",
                     "He solves cases by close observation and deduction, plays the violin and smokes a pipe.",
                     "His great adversary, a criminal mathematician, seemingly dies with him at the Reichenbach Falls."]),
]}


def _answered_by(flag: str) -> dict[str, Target]:
    """The targets of :data:`WRITTEN` a model answers at least 5 probes of (``flag``: its letter), with those
    probes and the neighbours that are targets of the set too."""
    def kept(probes):
        return [(p, a) for p, a, who in probes if flag in who]

    names = {n for n, t in WRITTEN.items() if len(kept(t.fill)) + len(kept(t.qa)) >= 5}
    return {n: Target(n, kept(t.fill), kept(t.qa), [x for x in t.neighbours if x in names], t.passages)
            for n, t in WRITTEN.items() if n in names}


BUILTIN_PROBES = _answered_by("s")  # SmolLM2-135M-Instruct's set, the default
GEMMA_PROBES = _answered_by("g")
PROBE_SETS = {"smollm2-135m": BUILTIN_PROBES, "gemma3-270m": GEMMA_PROBES}

def load_probes(path: str | Path | None = None) -> dict[str, Target]:
    """The built-in probes (SmolLM2's), a built-in set by model name (``gemma3-270m``), or those of a JSON file (see
    the module docstring); errors name the target and field."""
    if path is None:
        return BUILTIN_PROBES
    if str(path) in PROBE_SETS:
        return PROBE_SETS[str(path)]
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"probe file {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ObliviateError(f"probe file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(raw, dict) or not raw:
        raise ObliviateError(f"probe file {path}: expected an object mapping target names to probes")
    out = {}
    for name, t in raw.items():
        pairs = {}
        for kind in ("fill", "qa"):
            items = t.get(kind, [])
            if not all(isinstance(x, list) and len(x) == 2 and all(isinstance(s, str) and s for s in x)
                       for x in items):
                raise ObliviateError(f"probe file {path}, target {name!r}: {kind!r} must be a list of "
                                     f"[prompt, answer] pairs of non-empty strings")
            pairs[kind] = [tuple(x) for x in items]
        if not pairs["fill"] and not pairs["qa"]:
            raise ObliviateError(f"probe file {path}, target {name!r}: no 'fill' or 'qa' probes")
        out[name] = Target(name, pairs["fill"], pairs["qa"], list(t.get("neighbours", [])),
                           list(t.get("passages", [])))
    for t in out.values():
        missing = [n for n in t.neighbours if n not in out]
        if missing:
            raise ObliviateError(f"probe file {path}, target {t.name!r}: neighbour(s) {missing} are not targets")
    return out


def get_target(name: str, probes: dict[str, Target]) -> Target:
    if name not in probes:
        raise ObliviateError(f"unknown probe target {name!r}; expected one of {', '.join(sorted(probes))}")
    return probes[name]
